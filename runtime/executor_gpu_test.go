package runtime

// GPU tests: they skip where cuda.Open reports ErrNoDriver and run on the
// GPU machine as a compiled test binary (go test -c).

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"cnnc/runtime/cuda"
	"cnnc/runtime/runtimetest"
)

func openGPU(t *testing.T) *cuda.Device {
	t.Helper()
	d, err := cuda.Open(0)
	if errors.Is(err, cuda.ErrNoDriver) {
		t.Skipf("no GPU: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func loadModel(t *testing.T, d *cuda.Device, n int) (*Executor, *runtimetest.Model) {
	t.Helper()
	m, err := runtimetest.WriteVectorAddModel(t.TempDir(), n, 21)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Load(d, m.PTXPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Executor.Close: %v", err)
		}
	})
	return e, m
}

func mismatch(got, want []float32) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d values, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Sprintf("element %d: got %v, want %v", i, got[i], want[i])
		}
	}
	return ""
}

func checkTiming(t *testing.T, what string, tm Timing, iters int) {
	t.Helper()
	if tm.Iters != iters || !(tm.Min > 0 && tm.Min <= tm.Median && tm.Median <= tm.P90) {
		t.Errorf("%s: %+v, want %d iterations and 0 < min <= median <= p90", what, tm, iters)
	}
}

// (d) A hand-written plan, PTX and weights, end to end: one input in the
// arena, one argument in the weights, two launches in order.
func TestGPUExecutorRun(t *testing.T) {
	d := openGPU(t)
	const n = 256 * 40
	e, m := loadModel(t, d, n)
	for _, seed := range []uint64{1, 2} { // the arena is reused between runs
		x := runtimetest.Floats(n, seed)
		ys, err := e.Run([][]float32{x})
		if err != nil {
			t.Fatal(err)
		}
		if len(ys) != 1 {
			t.Fatalf("%d outputs", len(ys))
		}
		if s := mismatch(ys[0], m.Want(x)); s != "" {
			t.Errorf("run with seed %d: %s", seed, s)
		}
	}
	if _, err := e.Run([][]float32{make([]float32, n-1)}); err == nil || !strings.Contains(err.Error(), `input "x"`) {
		t.Errorf("Run with a short input: %v", err)
	}
}

func TestGPUExecutorTiming(t *testing.T) {
	d := openGPU(t)
	const n = 256 * 1024
	e, m := loadModel(t, d, n)
	for _, graph := range []bool{false, true, true} { // the second graph run reuses the capture
		tm, err := e.TimeEndToEnd(3, 20, graph)
		if err != nil {
			t.Fatalf("graph=%v: %v", graph, err)
		}
		checkTiming(t, fmt.Sprintf("end to end, graph=%v", graph), tm, 20)
		t.Logf("graph=%v: %+v", graph, tm)
	}
	ks, err := e.TimeKernels(3, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 {
		t.Fatalf("%d kernel timings, want 2", len(ks))
	}
	for i, k := range ks {
		if k.Kernel != runtimetest.VectorAddKernel {
			t.Errorf("timing %d is of %q", i, k.Kernel)
		}
		checkTiming(t, fmt.Sprintf("kernel %d", i), k, 20)
		t.Logf("launch %d: %+v", i, k)
	}
	// Timing (graph capture included) leaves the executor working.
	x := runtimetest.Floats(n, 3)
	ys, err := e.Run([][]float32{x})
	if err != nil {
		t.Fatal(err)
	}
	if s := mismatch(ys[0], m.Want(x)); s != "" {
		t.Errorf("run after timing: %s", s)
	}
}

// A launch that asks for more than 48 KiB of dynamic shared memory is
// opted in at load.
func TestGPUExecutorLargeShared(t *testing.T) {
	d := openGPU(t)
	optin, err := d.Attribute(cuda.AttrMaxSharedPerBlockOptin)
	if err != nil {
		t.Fatal(err)
	}
	if optin < 100<<10 {
		t.Skipf("the card allows %d bytes of shared memory per block", optin)
	}
	const n = 256 * 8
	m, err := runtimetest.WriteVectorAddModel(t.TempDir(), n, 5)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadArtifact(m.PTXPath)
	if err != nil {
		t.Fatal(err)
	}
	a.Plan.Launches[1].SharedBytes = 100 << 10
	e, err := LoadArtifact(d, a)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	x := runtimetest.Floats(n, 6)
	ys, err := e.Run([][]float32{x})
	if err != nil {
		t.Fatal(err)
	}
	if s := mismatch(ys[0], m.Want(x)); s != "" {
		t.Errorf("%s", s)
	}
}

// A plan naming a kernel the module lacks fails at load, and the device
// stays usable (what Load made is freed).
func TestGPUExecutorLoadFailure(t *testing.T) {
	d := openGPU(t)
	m, err := runtimetest.WriteVectorAddModel(t.TempDir(), 256, 7)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ReadArtifact(m.PTXPath)
	if err != nil {
		t.Fatal(err)
	}
	a.Plan.Launches[1].Kernel = "k001_missing"
	if _, err := LoadArtifact(d, a); err == nil || !strings.Contains(err.Error(), `"k001_missing"`) {
		t.Errorf("LoadArtifact with a missing kernel: %v", err)
	}
	a.Plan.Launches[1].Kernel = runtimetest.VectorAddKernel
	e, err := LoadArtifact(d, a)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	x := runtimetest.Floats(256, 8)
	if ys, err := e.Run([][]float32{x}); err != nil || mismatch(ys[0], m.Want(x)) != "" {
		t.Errorf("after a failed load: %v", err)
	}
}
