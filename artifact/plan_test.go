package artifact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func samplePlan() *Plan {
	return &Plan{Format: FormatVersion, Model: "m.onnx", Target: "sm_80", Precision: "fp32", Batch: 1, PTX: "m.ptx",
		Inputs:  []TensorRef{{Name: "x", DType: "f32", Shape: []int{1, 4}, Offset: 0, Bytes: 16}},
		Outputs: []TensorRef{{Name: "y", DType: "f32", Shape: []int{1, 4}, Offset: 256, Bytes: 16}},
		Arena:   512, Weights: WeightsFile{File: "m.weights", Bytes: 16, SHA256: SHA256(make([]byte, 16))},
		Launches: []Launch{{Kernel: "k000_add", Grid: [3]int{1, 1, 1}, Block: [3]int{256, 1, 1},
			Args: []Arg{{Buffer: BufArena}, {Buffer: BufWeights}, {Buffer: BufArena, Offset: 256},
				{Buffer: BufTensorMaps, Map: sampleMap()}}, FLOPs: 0, Bytes: 48}}}
}

// sampleMap is a 2-D tiled map over the weights' 4 x 4 halves.
func sampleMap() *TensorMap {
	return &TensorMap{Buffer: BufWeights, Dims: []int64{8, 1}, Strides: []int64{16}, Box: []int{8, 1},
		ElementStrides: []int{1, 1}, Swizzle: 128}
}

func TestPlanRoundTrip(t *testing.T) {
	p := samplePlan()
	data, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodePlan(data, "m.plan.json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, back); diff != "" {
		t.Errorf("decode(encode(plan)) differs (-want +got):\n%s", diff)
	}
	again, _ := back.Encode()
	if string(again) != string(data) {
		t.Error("re-encoding changes the bytes")
	}
}

func TestPlanRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Plan)
		want   string
	}{
		{"format", func(p *Plan) { p.Format = 99 }, "plan format 99"},
		{"ptx path", func(p *Plan) { p.PTX = "../x.ptx" }, "file name beside the plan"},
		{"output outside arena", func(p *Plan) { p.Outputs[0].Offset = 600 }, "outside the arena"},
		{"empty grid", func(p *Plan) { p.Launches[0].Grid[1] = 0 }, "must be positive"},
		{"big block", func(p *Plan) { p.Launches[0].Block = [3]int{2048, 1, 1} }, "exceeds 1024"},
		{"unknown buffer", func(p *Plan) { p.Launches[0].Args[0].Buffer = "heap" }, "unknown buffer"},
		{"arg outside weights", func(p *Plan) { p.Launches[0].Args[1].Offset = 64 }, "outside weights"},
		{"map missing", func(p *Plan) { p.Launches[0].Args[3].Map = nil }, "without a map"},
		{"map on a pointer", func(p *Plan) { p.Launches[0].Args[0].Map = sampleMap() }, "has a tensor map"},
		{"map past buffer", func(p *Plan) { p.Launches[0].Args[3].Map.Dims[1] = 2 }, "past weights of 16"},
		{"map overflowing", func(p *Plan) {
			p.Launches[0].Args[3].Map.Dims[1], p.Launches[0].Args[3].Map.Strides[0] = 1<<32, 1<<36
		}, "reaches past weights"},
		{"map huge stride", func(p *Plan) { p.Launches[0].Args[3].Map.Strides[0] = 1 << 62 }, "below 2^40"},
		{"map offset past buffer", func(p *Plan) { p.Launches[0].Args[3].Map.Offset = 1 << 62 }, "reaches"},
		{"im2col corner", func(p *Plan) {
			m := p.Launches[0].Args[3].Map
			m.Dims, m.Strides, m.ElementStrides, m.Box = []int64{8, 1, 1, 1}, []int64{16, 16, 16}, []int{1, 1, 1, 1}, nil
			m.Im2col = &Im2col{Lower: []int{-129, 0}, Upper: []int{0, 0}, Channels: 8, Pixels: 1}
		}, "corners [-129 0]"},
		{"map buffer", func(p *Plan) { p.Launches[0].Args[3].Map.Buffer = "heap" }, "unknown buffer"},
		{"map stride", func(p *Plan) { p.Launches[0].Args[3].Map.Strides[0] = 8 }, "multiple of 16"},
		{"map misaligned", func(p *Plan) { p.Launches[0].Args[3].Map.Offset = 8 }, "offset 8"},
		{"map box", func(p *Plan) { p.Launches[0].Args[3].Map.Box = []int{8} }, "box of 1 dimensions"},
		{"map big box", func(p *Plan) { p.Launches[0].Args[3].Map.Box[1] = 300 }, "1 to 256"},
		{"map swizzle", func(p *Plan) { p.Launches[0].Args[3].Map.Swizzle = 16 }, "swizzle 16"},
		{"map inner box", func(p *Plan) { p.Launches[0].Args[3].Map.Swizzle = 32; p.Launches[0].Args[3].Map.Box[0] = 4 },
			"inner box of 8 bytes"},
		{"im2col rank", func(p *Plan) { p.Launches[0].Args[3].Map.Im2col = &Im2col{Channels: 8, Pixels: 1} }, "im2col tensor map of rank 2"},
	}
	for _, c := range cases {
		p := samplePlan()
		c.mutate(p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if _, err := DecodePlan([]byte(`{"format": 1, "surprise": true}`), "x"); err == nil {
		t.Error("a plan with an unknown field decoded")
	}
	if _, err := DecodePlan([]byte(`{"format": 1}{}`), "x"); err == nil {
		t.Error("a plan with trailing data decoded")
	}
}

func TestReadWeightsChecksHash(t *testing.T) {
	dir := t.TempDir()
	p := samplePlan()
	planPath := filepath.Join(dir, "m.plan.json")
	os.WriteFile(filepath.Join(dir, "m.weights"), make([]byte, 16), 0o644)
	if _, err := p.ReadWeights(planPath); err != nil {
		t.Fatal(err)
	}
	bad := make([]byte, 16)
	bad[3] = 1
	os.WriteFile(filepath.Join(dir, "m.weights"), bad, 0o644)
	if _, err := p.ReadWeights(planPath); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("ReadWeights of altered weights = %v, want a SHA-256 mismatch", err)
	}
	os.WriteFile(filepath.Join(dir, "m.weights"), bad[:8], 0o644)
	if _, err := p.ReadWeights(planPath); err == nil || !strings.Contains(err.Error(), "8 bytes") {
		t.Errorf("ReadWeights of short weights = %v, want a size error", err)
	}
}

// FuzzDecodePlan: the plan loader reads untrusted bytes; it must never
// panic, and whatever it accepts validates and re-encodes.
func FuzzDecodePlan(f *testing.F) {
	data, _ := samplePlan().Encode()
	f.Add(data)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format": 1, "launches": [{"kernel": "k", "grid": [1,1,1], "block": [1,1,1]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePlan(b, "fuzz")
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted a plan that does not validate: %v", err)
		}
		if _, err := p.Encode(); err != nil {
			t.Fatal(err)
		}
	})
}
