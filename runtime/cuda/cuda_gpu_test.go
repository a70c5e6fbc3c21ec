package cuda

// GPU tests: they skip where Open reports ErrNoDriver and run on the GPU
// machine as a compiled test binary (go test -c).

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"cnnc/runtime/runtimetest"
)

func openGPU(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if errors.Is(err, ErrNoDriver) {
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

// vadd loads the vector-add kernel.
func vadd(t *testing.T, d *Device) Function {
	t.Helper()
	m, err := d.LoadModule([]byte(runtimetest.VectorAddPTX))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unload() })
	fn, err := m.Function(runtimetest.VectorAddKernel)
	if err != nil {
		t.Fatal(err)
	}
	return fn
}

// upload allocates device memory for f and copies it there.
func upload(t *testing.T, d *Device, f []float32) DevicePtr {
	t.Helper()
	p, err := d.Alloc(int64(4 * len(f)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Free(p) })
	if err := d.CopyHtoD(p, AsBytes(f)); err != nil {
		t.Fatal(err)
	}
	return p
}

func download(t *testing.T, d *Device, p DevicePtr, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := d.CopyDtoH(AsBytes(out), p); err != nil {
		t.Fatal(err)
	}
	return out
}

func addAll(a, b []float32) []float32 {
	c := make([]float32, len(a))
	for i := range a {
		c[i] = a[i] + b[i]
	}
	return c
}

// firstMismatch names the first differing element, "" if none.
func firstMismatch(got, want []float32) string {
	for i := range want {
		if got[i] != want[i] {
			return fmt.Sprintf("element %d: got %v, want %v", i, got[i], want[i])
		}
	}
	return ""
}

func TestGPUDeviceInfo(t *testing.T) {
	d := openGPU(t)
	name, err := d.Name()
	if err != nil || name == "" {
		t.Errorf("Name = %q, %v", name, err)
	}
	major, minor, err := d.ComputeCapability()
	if err != nil || major < 7 {
		t.Errorf("ComputeCapability = %d.%d, %v", major, minor, err)
	}
	mem, err := d.TotalMem()
	if err != nil || mem < 1<<30 {
		t.Errorf("TotalMem = %d, %v", mem, err)
	}
	bus, err := d.PCIBusID()
	if err != nil || !strings.Contains(bus, ":") {
		t.Errorf("PCIBusID = %q, %v", bus, err)
	}
	v, err := DriverVersion()
	if err != nil || v < 11000 {
		t.Errorf("DriverVersion = %d, %v", v, err)
	}
	t.Logf("%s, sm_%d%d, %d MiB, bus %s, CUDA %d.%d; bound %s", name, major, minor, mem>>20, bus, v/1000, v%1000/10, strings.Join(Symbols(), " "))
}

// (a) A hand-written PTX kernel on random data.
func TestGPUVectorAdd(t *testing.T) {
	d := openGPU(t)
	fn := vadd(t, d)
	const n = 256 * 512
	a, b := runtimetest.Floats(n, 1), runtimetest.Floats(n, 2)
	pa, pb := upload(t, d, a), upload(t, d, b)
	pc := upload(t, d, make([]float32, n))
	if err := d.Memset(pc, 0xff, 4*n); err != nil { // NaNs where the kernel writes nothing
		t.Fatal(err)
	}
	if err := d.Launch(fn, Dim3{n / 256, 1, 1}, Dim3{256, 1, 1}, 0, 0, pa, pb, pc); err != nil {
		t.Fatal(err)
	}
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if m := firstMismatch(download(t, d, pc, n), addAll(a, b)); m != "" {
		t.Errorf("vadd: %s", m)
	}
}

// (b) A module that does not compile reports the JIT log.
func TestGPUBadPTXReportsJITLog(t *testing.T) {
	d := openGPU(t)
	_, err := d.LoadModule([]byte(runtimetest.BrokenPTX))
	var je *JITError
	if !errors.As(err, &je) {
		t.Fatalf("LoadModule(broken) = %v, want a *JITError", err)
	}
	if je.Log == "" || !strings.Contains(err.Error(), je.Log) || !strings.HasPrefix(je.Err.Name, "CUDA_ERROR_") {
		t.Errorf("error %q: want a CUDA_ERROR_ name and the JIT log %q in it", err, je.Log)
	}
	t.Logf("%v", err)
}

// (c) A captured graph, replayed, computes what direct launches do, with
// the memory's contents at replay time.
func TestGPUGraphReplay(t *testing.T) {
	d := openGPU(t)
	fn := vadd(t, d)
	const n = 256 * 64
	a, b := runtimetest.Floats(n, 3), runtimetest.Floats(n, 4)
	pa, pb := upload(t, d, a), upload(t, d, b)
	pc, pe := upload(t, d, make([]float32, n)), upload(t, d, make([]float32, n))
	s, err := d.CreateStream()
	if err != nil {
		t.Fatal(err)
	}
	defer d.DestroyStream(s)
	grid, block := Dim3{n / 256, 1, 1}, Dim3{256, 1, 1}
	if err := d.BeginCapture(s); err != nil {
		t.Fatal(err)
	}
	// c = a + b; e = c + a
	if err := d.Launch(fn, grid, block, 0, s, pa, pb, pc); err != nil {
		t.Fatal(err)
	}
	if err := d.Launch(fn, grid, block, 0, s, pc, pa, pe); err != nil {
		t.Fatal(err)
	}
	g, err := d.EndCapture(s)
	if err != nil {
		t.Fatal(err)
	}
	exec, err := d.Instantiate(g)
	if err != nil {
		t.Fatal(err)
	}
	defer d.DestroyGraphExec(exec)
	if err := d.DestroyGraph(g); err != nil {
		t.Fatal(err)
	}
	for round, seed := range []uint64{5, 6} {
		a := runtimetest.Floats(n, seed) // new data under the same pointers
		if err := d.CopyHtoD(pa, AsBytes(a)); err != nil {
			t.Fatal(err)
		}
		if err := d.Memset(pe, 0xff, 4*n); err != nil {
			t.Fatal(err)
		}
		if err := d.GraphLaunch(exec, s); err != nil {
			t.Fatal(err)
		}
		if err := d.SyncStream(s); err != nil {
			t.Fatal(err)
		}
		if m := firstMismatch(download(t, d, pe, n), addAll(addAll(a, b), a)); m != "" {
			t.Errorf("replay %d: %s", round, m)
		}
	}
}

func TestGPUEventsTime(t *testing.T) {
	d := openGPU(t)
	fn := vadd(t, d)
	const n = 256 * 4096
	pa, pb := upload(t, d, runtimetest.Floats(n, 7)), upload(t, d, runtimetest.Floats(n, 8))
	pc := upload(t, d, make([]float32, n))
	s, err := d.CreateStream()
	if err != nil {
		t.Fatal(err)
	}
	defer d.DestroyStream(s)
	var start, end Event
	if start, err = d.CreateEvent(); err != nil {
		t.Fatal(err)
	}
	defer d.DestroyEvent(start)
	if end, err = d.CreateEvent(); err != nil {
		t.Fatal(err)
	}
	defer d.DestroyEvent(end)
	p := PointerParams(pa, pb, pc)
	err = d.Batch(func(b *Batch) error {
		if err := b.RecordEvent(start, s); err != nil {
			return err
		}
		for range 10 {
			if err := b.Launch(fn, Dim3{n / 256, 1, 1}, Dim3{256, 1, 1}, 0, s, p); err != nil {
				return err
			}
		}
		if err := b.RecordEvent(end, s); err != nil {
			return err
		}
		return b.SyncEvent(end)
	})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := d.EventElapsed(start, end)
	if err != nil || ms <= 0 {
		t.Errorf("10 launches over 4 MiB took %v ms, err %v", ms, err)
	}
}

// (e) The thread-pinning check: allocations from many goroutines all
// succeed (unpinned, cuMemAlloc failed with CUDA_ERROR_INVALID_CONTEXT).
func TestGPUAllocFromManyGoroutines(t *testing.T) {
	d := openGPU(t)
	const goroutines, each = 8, 125
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p, err := d.Alloc(int64(256 * (1 + (g*each+i)%64)))
				if err != nil {
					errs <- err
					continue
				}
				if err := d.Free(p); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	var got []string
	for err := range errs {
		got = append(got, err.Error())
	}
	if len(got) > 0 {
		slices.Sort(got)
		t.Errorf("%d of %d allocations failed; first: %s", len(got), goroutines*each, got[0])
	}
}

func TestGPUErrors(t *testing.T) {
	d := openGPU(t)
	_, err := d.Alloc(1 << 50) // a petabyte
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != 2 {
		t.Fatalf("Alloc(1 PiB) = %v, want CUDA_ERROR_OUT_OF_MEMORY", err)
	}
	if want := "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	if _, err := Open(1 << 20); err == nil || errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "no device 1048576") {
		t.Errorf("Open(1<<20) = %v", err)
	}
	m, err := d.LoadModule([]byte(runtimetest.VectorAddPTX))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unload()
	if _, err := m.Function("nosuch"); err == nil || !strings.Contains(err.Error(), `kernel "nosuch"`) {
		t.Errorf(`Function("nosuch") = %v`, err)
	}
}

// A kernel opted in to more than 48 KiB of dynamic shared memory launches
// with it; one that was not fails.
func TestGPUSharedMemoryOptIn(t *testing.T) {
	d := openGPU(t)
	optin, err := d.Attribute(AttrMaxSharedPerBlockOptin)
	if err != nil {
		t.Fatal(err)
	}
	const big = 64 << 10
	if optin < big {
		t.Skipf("the card allows %d bytes of shared memory per block", optin)
	}
	fn := vadd(t, d)
	const n = 256
	a, b := runtimetest.Floats(n, 9), runtimetest.Floats(n, 10)
	pa, pb, pc := upload(t, d, a), upload(t, d, b), upload(t, d, make([]float32, n))
	one, block := Dim3{1, 1, 1}, Dim3{256, 1, 1}
	if err := d.Launch(fn, one, block, big, 0, pa, pb, pc); err == nil {
		t.Error("a launch with 64 KiB of shared memory succeeded without opting in")
	}
	if err := fn.SetMaxDynamicShared(big); err != nil {
		t.Fatal(err)
	}
	if got, err := fn.Attribute(FuncMaxDynamicShared); err != nil || got != big {
		t.Errorf("max dynamic shared = %d, %v; want %d", got, err, big)
	}
	if err := d.Launch(fn, one, block, big, 0, pa, pb, pc); err != nil {
		t.Fatal(err)
	}
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if m := firstMismatch(download(t, d, pc, n), addAll(a, b)); m != "" {
		t.Errorf("after opt-in: %s", m)
	}
}
