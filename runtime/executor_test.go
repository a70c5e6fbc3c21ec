package runtime

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"cnnc/artifact"
	"cnnc/runtime/cuda"
	"cnnc/runtime/runtimetest"
)

func writeModel(t *testing.T) *runtimetest.Model {
	t.Helper()
	m, err := runtimetest.WriteVectorAddModel(t.TempDir(), 1024, 11)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReadArtifact(t *testing.T) {
	m := writeModel(t)
	a, err := ReadArtifact(m.PTXPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Weights) != 4*1024 || len(a.Plan.Launches) != 2 || string(a.PTX) != runtimetest.VectorAddPTX {
		t.Errorf("read %d weight bytes, %d launches, %d PTX bytes", len(a.Weights), len(a.Plan.Launches), len(a.PTX))
	}
}

func TestReadArtifactRejects(t *testing.T) {
	cases := []struct {
		name   string
		damage func(m *runtimetest.Model, plan, weights string) error
		want   string
	}{
		{"missing ptx", func(m *runtimetest.Model, _, _ string) error { return os.Remove(m.PTXPath) }, "model.ptx"},
		{"missing plan", func(_ *runtimetest.Model, plan, _ string) error { return os.Remove(plan) }, "model.plan.json"},
		{"corrupt plan", func(_ *runtimetest.Model, plan, _ string) error {
			return os.WriteFile(plan, []byte(`{"format": 1,`), 0o644)
		}, "not a cnnc plan"},
		{"missing weights", func(_ *runtimetest.Model, _, weights string) error { return os.Remove(weights) }, "model.weights"},
		{"weights from another compile", func(_ *runtimetest.Model, _, weights string) error {
			return os.WriteFile(weights, runtimetest.Float32Bytes(runtimetest.Floats(1024, 99)), 0o644)
		}, "SHA-256"},
		{"kernel not in the PTX", func(m *runtimetest.Model, _, _ string) error {
			return os.WriteFile(m.PTXPath, []byte(strings.ReplaceAll(runtimetest.VectorAddPTX, "vadd", "vsub")), 0o644)
		}, "runs kernel vadd, which"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := writeModel(t)
			plan, weights := artifact.Paths(m.PTXPath)
			if err := c.damage(m, plan, weights); err != nil {
				t.Fatal(err)
			}
			_, err := ReadArtifact(m.PTXPath)
			if !errors.Is(err, ErrBadArtifact) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ReadArtifact = %v, want ErrBadArtifact containing %q", err, c.want)
			}
		})
	}
}

func TestCheckInputs(t *testing.T) {
	plan := &artifact.Plan{
		Precision: "fp32",
		Inputs: []artifact.TensorRef{
			{Name: "image", DType: "f32", Shape: []int{1, 3, 4, 4}, Bytes: 4 * 48},
			{Name: "mask", DType: "f32", Shape: []int{2}, Bytes: 8},
		},
		Outputs: []artifact.TensorRef{{Name: "y", DType: "f32", Shape: []int{1, 10}, Bytes: 40}},
	}
	ok := [][]float32{make([]float32, 48), make([]float32, 2)}
	if err := checkInputs(plan, ok); err != nil {
		t.Fatalf("matching inputs: %v", err)
	}
	cases := []struct {
		name   string
		plan   func(p artifact.Plan) *artifact.Plan
		inputs [][]float32
		want   string
	}{
		{"too few", nil, ok[:1], `got 1 inputs, the model has 2 ("image", "mask")`},
		{"wrong size", nil, [][]float32{make([]float32, 47), ok[1]}, `input "image": got 47 values, want f32[1 3 4 4] (48 values)`},
		{"fp16 plan with fp32 sizes", func(p artifact.Plan) *artifact.Plan { p.Precision = "fp16"; return &p }, ok, `input "image" is f32[1 3 4 4] in 192 bytes, want 96`},
		{"unknown precision", func(p artifact.Plan) *artifact.Plan { p.Precision = "bf16"; return &p }, ok, `plan precision "bf16"`},
		{"plan bytes disagree", func(p artifact.Plan) *artifact.Plan {
			p.Outputs = []artifact.TensorRef{{Name: "y", DType: "f32", Shape: []int{1, 10}, Bytes: 20}}
			return &p
		}, ok, `output "y" is f32[1 10] in 20 bytes, want 40`},
	}
	for _, c := range cases {
		p := plan
		if c.plan != nil {
			p = c.plan(*plan)
		}
		if err := checkInputs(p, c.inputs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestKernelParams(t *testing.T) {
	const arena, weights = cuda.DevicePtr(0x7000_0000_0000), cuda.DevicePtr(0x7100_0000_0000)
	m := &artifact.TensorMap{Buffer: artifact.BufArena}
	args := []artifact.Arg{
		{Buffer: artifact.BufArena, Offset: 0},
		{Buffer: artifact.BufTensorMaps, Map: m},
		{Buffer: artifact.BufWeights, Offset: 4096},
		{Buffer: artifact.BufTensorMaps, Map: m},
		{Buffer: artifact.BufArena, Offset: 256},
	}
	maps := []cuda.TensorMap{{1}, {2}}
	params := kernelParams(args, arena, weights, maps)
	got := params.Values()
	// The maps go by value, in argument order (their slots unused).
	want := []uint64{0x7000_0000_0000, 0, 0x7100_0000_1000, 0, 0x7000_0000_0100}
	for j, first := range map[int]byte{1: 1, 3: 2} {
		if b := params.Bytes(j); len(b) != 128 || b[0] != first {
			t.Errorf("argument %d: %d bytes by value starting %v, want the 128 of map %d", j, len(b), b[:min(len(b), 1)], first)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("argument %d = %#x, want %#x", i, got[i], want[i])
		}
	}
}

func TestSummarizeMs(t *testing.T) {
	cases := []struct {
		samples          []float64
		median, min, p90 float64
	}{
		{[]float64{7}, 7, 7, 7},
		{[]float64{3, 1, 2}, 2, 1, 3},
		// ten values: the median is between the 5th and 6th; 90% of ten is
		// nine values, so p90 is the 9th smallest.
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5.5, 1, 9},
		// eleven values: ceil(9.9) = 10th smallest.
		{[]float64{0.5, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0, 5.0}, 0.6, 0.1, 1.0},
	}
	for _, c := range cases {
		in := append([]float64(nil), c.samples...)
		got := summarizeMs("k", c.samples)
		if got.Median != c.median || got.Min != c.min || got.P90 != c.p90 || got.Iters != len(c.samples) || got.Kernel != "k" {
			t.Errorf("summarizeMs(%v) = %+v, want median %v min %v p90 %v", c.samples, got, c.median, c.min, c.p90)
		}
		for i := range in {
			if in[i] != c.samples[i] {
				t.Errorf("summarizeMs reordered its input")
				break
			}
		}
	}
}

func TestTimingArguments(t *testing.T) {
	for _, c := range [][2]int{{-1, 10}, {0, 0}} {
		if err := checkCounts(c[0], c[1]); err == nil {
			t.Errorf("checkCounts(%d, %d) accepted", c[0], c[1])
		}
	}
	if err := checkCounts(0, 1); err != nil {
		t.Error(err)
	}
}

func TestNextHeadStart(t *testing.T) {
	for _, c := range []struct{ queued, want float64 }{ // microseconds
		{0, 20}, {100, 170}, {1e6, 1e5},
	} {
		got := nextHeadStart(durationUs(c.queued))
		if got != durationUs(c.want) {
			t.Errorf("nextHeadStart(%v us) = %v, want %v us", c.queued, got, c.want)
		}
	}
}

func TestSpinPTXDefinesItsKernel(t *testing.T) {
	// The executor looks the spin kernel up by this name.
	if m := entryRE.FindStringSubmatch(spinPTX); m == nil || m[1] != "cnnc_spin" {
		t.Errorf("spin PTX entries: %v", m)
	}
	if m := entryRE.FindAllStringSubmatch(runtimetest.VectorAddPTX, -1); len(m) != 1 || m[0][1] != "vadd" {
		t.Errorf("vector-add PTX entries: %v", m)
	}
}

func durationUs(us float64) time.Duration { return time.Duration(us * float64(time.Microsecond)) }

func TestHalfConversion(t *testing.T) {
	in := []float32{0, 1, -2.5, 65504, 1e-7, 0.1, 3.14159}
	// Each value rounds to the nearest half: exact for the first four,
	// within a half-ulp (2^-11 relative) for the others.
	got := fromHalf(toHalf(in))
	for i, v := range in {
		if d := math.Abs(float64(got[i] - v)); d > math.Abs(float64(v))/2048+6e-8 {
			t.Errorf("%g came back as %g", v, got[i])
		}
	}
	if got[3] != 65504 || got[2] != -2.5 {
		t.Errorf("exact halves changed: %v", got)
	}
	f := fromFloat(cuda.AsBytes([]float32{1.5, -3}))
	if f[0] != 1.5 || f[1] != -3 {
		t.Errorf("fromFloat = %v", f)
	}
}
