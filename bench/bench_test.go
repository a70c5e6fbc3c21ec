package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cnnc/frontend/onnx/onnxbuild"
	"cnnc/ir"
	"cnnc/passes/costmodel"
)

func TestSpearman(t *testing.T) {
	cases := []struct {
		a, b []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, 1},
		{[]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1},
		{[]float64{1, 2, 3, 4, 5}, []float64{5, 6, 7, 8, 7}, 0.8207826816681233}, // scipy.stats.spearmanr
		{[]float64{1, 1, 2}, []float64{3, 3, 3}, 0},
	}
	for _, c := range cases {
		if got := Spearman(c.a, c.b); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Spearman(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestFitReports: a report whose launches a known profile timed is read
// back and fitted; the fitted profile predicts them better than the start.
func TestFitReports(t *testing.T) {
	truth, err := costmodel.Lookup("h200")
	if err != nil {
		t.Fatal(err)
	}
	truth.SliceLatencyUs, truth.LaunchUs = 1.3, 3
	var v Variant
	for i := 0; i < 60; i++ {
		f := costmodel.Kernel{Threads: 256, Blocks: 1 + i*13, Bytes: int64(i+1) << 18}
		if i%2 == 0 {
			f.Gemm, f.FLOPs, f.Tile, f.KSlices = true, int64(i+1)<<26, costmodel.TileCandidates[i%len(costmodel.TileCandidates)], 8+i
		}
		v.Kernels = append(v.Kernels, KernelRow{Kernel: "k", MeasuredUs: truth.Predict(f).Ns / 1e3, Features: &f})
	}
	r := &Report{Model: "synthetic", Batch: 1, Profile: truth, Variants: []Variant{v}}
	path := filepath.Join(t.TempDir(), "r.json")
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	reports, err := ReadReports(path)
	if err != nil || len(reports) != 1 {
		t.Fatalf("ReadReports of one report: %d reports, %v", len(reports), err)
	}
	back := reports[0]
	// Reports one per line, as gpu_check.sh writes them, read back too;
	// a truncated line is an error that names the report.
	var lines bytes.Buffer
	for range 3 {
		b, _ := json.Marshal(r)
		lines.Write(append(b, '\n'))
	}
	jsonl := filepath.Join(t.TempDir(), "r.jsonl")
	os.WriteFile(jsonl, lines.Bytes(), 0o644)
	if rs, err := ReadReports(jsonl); err != nil || len(rs) != 3 {
		t.Errorf("ReadReports of 3 lines: %d reports, %v", len(rs), err)
	}
	os.WriteFile(jsonl, lines.Bytes()[:lines.Len()-40], 0o644)
	if _, err := ReadReports(jsonl); err == nil || !strings.Contains(err.Error(), "report 3") {
		t.Errorf("a truncated third report: %v, want an error naming report 3", err)
	}
	start := truth
	start.SliceLatencyUs, start.LaunchUs, start.GemmIssueEff = 0.3, 6, 0.4
	var out bytes.Buffer
	fitted, err := FitReports(&out, start, []*Report{back})
	if err != nil {
		t.Fatal(err)
	}
	samples := Samples([]*Report{back})
	if len(samples) != 60 {
		t.Fatalf("%d samples read back, want 60", len(samples))
	}
	if before, after := start.LogError(samples), fitted.LogError(samples); after > before/4 || after > 0.05 {
		t.Errorf("log error %.3f before, %.3f after the fit\n%s", before, after, out.String())
	}
}

func TestPeers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.jsonl")
	os.WriteFile(path, []byte(`[torch.onnx] a log line
{"peer": "pytorch-eager", "model": "resnet50", "batch": 1, "precision": "fp16", "card": "NVIDIA H200", "median_ms": 2.5, "compile_s": 0.1}
{"peer": "pytorch-reduce-overhead", "model": "resnet50", "batch": 32, "precision": "fp16", "card": "NVIDIA H200", "median_ms": 9}
{"peer": "pytorch-max-autotune", "model": "resnet50", "batch": 1, "precision": "fp16", "card": "NVIDIA H200", "error": "TimeoutError: x"}
`), 0o644)
	peers, err := ReadPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &Report{Model: "resnet50.onnx", Batch: 1, Precision: "fp16", Card: "NVIDIA H200", ModelFLOPs: 8e9,
		Ceilings: Ceilings{FP32TFLOPS: 60}, Variants: []Variant{{OptLevel: 2, GraphMs: 1.25}}}
	r.AddPeers(peers)
	if len(r.Peers) != 2 {
		t.Fatalf("kept %d peers, want the two at batch 1", len(r.Peers))
	}
	var md bytes.Buffer
	r.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "| pytorch-eager | 2.5000 | 0.1 |") || !strings.Contains(md.String(), "| 2.00x |") ||
		!strings.Contains(md.String(), "failed: TimeoutError") {
		t.Errorf("peer rows missing from the report:\n%s", md.String())
	}
	os.WriteFile(path, []byte("{not json\n"), 0o644)
	if _, err := ReadPeers(path); err == nil {
		t.Error("a broken peers file was accepted")
	}
}

func TestOpClass(t *testing.T) {
	for kernel, want := range map[string]string{
		"k003_conv1x1_clip": "1x1 conv", "k004_conv3x3_add_relu": "kxk conv", "k005_conv3x3_splitk_reduce": "kxk conv",
		"k006_dwconv5x5_clip": "depthwise", "k007_gemm_tc": "GEMM", "k008_matmul": "GEMM", "k009_maxpool3x3": "pooling",
		"k010_global_avgpool": "pooling", "k011_hard_swish_mul": "element-wise", "k012_softmax": "element-wise",
	} {
		if got := OpClass(kernel); got != want {
			t.Errorf("OpClass(%s) = %s, want %s", kernel, got, want)
		}
	}
}

// syntheticReport is a bench report with made-up measurements.
func syntheticReport(model string, batch int, flops int64, util float64) *Report {
	v := Variant{OptLevel: 2, GraphMs: 1, UtilGraph: util, Kernels: []KernelRow{
		{Kernel: "k000_conv3x3_relu", MeasuredUs: 600, FLOPs: flops * 3 / 4, Util: util * 1.2},
		{Kernel: "k001_dwconv3x3", MeasuredUs: 300, FLOPs: flops / 4, Util: util / 2},
		{Kernel: "k002_global_avgpool", MeasuredUs: 100},
	}}
	o0 := v
	o0.OptLevel, o0.GraphMs, o0.UtilGraph = 0, 2, util/2
	return &Report{Model: model + ".onnx", Batch: batch, ModelFLOPs: flops, Params: 3e6, Card: "H200", Precision: "fp32",
		Ceilings: Ceilings{FP32TFLOPS: 60}, Variants: []Variant{o0, v},
		Peers: []Peer{{Peer: "pytorch-eager", MedianMs: 1.5}, {Peer: "pytorch-graph", MedianMs: 1.2}}}
}

func TestSurveyTablesAndPlots(t *testing.T) {
	s := &Survey{Failures: map[string]string{"densenet121": "compile: out of memory"}}
	for i, m := range []string{"resnet50", "mobilenet_v2", "efficientnet_b0"} {
		for _, b := range []int{1, 32} {
			s.Reports = append(s.Reports, syntheticReport(m, b, int64(1+i)*1e9*int64(b), 0.01*float64(b+i)))
		}
	}
	shares := s.Reports[0].Variants[1].Shares()
	if shares[1].Class != "kxk conv" || shares[1].TimeShare != 0.6 || shares[1].FLOPsShare != 0.75 || shares[4].TimeShare != 0.1 {
		t.Errorf("shares = %+v", shares)
	}
	var md bytes.Buffer
	s.WriteMarkdown(&md)
	for _, want := range []string{"| resnet50 | 32 |", "pytorch-graph", "60% / 75%", "densenet121: compile: out of memory"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("survey Markdown lacks %q:\n%s", want, md.String())
		}
	}
	dir := t.TempDir()
	for name, draw := range map[string]func(string) error{
		"flops.png": s.PlotUtilVsFLOPs, "batch.png": s.PlotUtilVsBatch,
		"layers.png": func(p string) error { return PlotLayers(s.Reports[0], p) },
	} {
		p := filepath.Join(dir, name)
		if err := draw(p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st, err := os.Stat(p); err != nil || st.Size() < 5000 {
			t.Errorf("%s: %v", name, err)
		}
		if os.Getenv("CNNC_KEEP_PLOTS") != "" {
			os.Rename(p, "/tmp/survey_"+name)
		}
	}
}

// TestNetKernelTimes: intervals that overshoot the end-to-end time by 2 us
// a launch lose those 2 us each; intervals that add up to less lose
// nothing; no kernel loses more than half its interval.
func TestNetKernelTimes(t *testing.T) {
	net, ovh := NetKernelTimes([]float64{10, 5, 3}, 0.012)
	if math.Abs(ovh-2) > 1e-9 || math.Abs(net[0]-8) > 1e-9 || math.Abs(net[1]-3) > 1e-9 || math.Abs(net[2]-1.5) > 1e-9 {
		t.Errorf("NetKernelTimes = %v, %v; want [8 3 1.5], 2", net, ovh)
	}
	net, ovh = NetKernelTimes([]float64{10, 5}, 0.020)
	if ovh != 0 || net[0] != 10 || net[1] != 5 {
		t.Errorf("intervals under the end-to-end time: %v, %v; want them unchanged", net, ovh)
	}
	if net, ovh := NetKernelTimes(nil, 1); len(net) != 0 || ovh != 0 {
		t.Errorf("no launches: %v, %v", net, ovh)
	}
}

// TestPrepare: a benchmark's CPU work alone compiles both variants (the
// -O2 one in fewer kernels) and keeps the reference, with no GPU.
func TestPrepare(t *testing.T) {
	if os.Getenv("CNNC_SKIP_LLC") == "1" {
		t.Skip("CNNC_SKIP_LLC=1")
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.onnx")
	if err := os.WriteFile(model, onnxbuild.TinyResNet(1).Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	prof, err := costmodel.Lookup("h100")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(Options{Model: model, Batch: 2, Iters: 3, Warmup: 1, Seed: 1, Profile: prof, Dir: dir, Baseline: "cudnn"})
	if err != nil {
		t.Fatal(err)
	}
	// The cuDNN baseline gets the graph with batch norm folded, unfused.
	if p.baseline == nil {
		t.Fatal("no baseline graph")
	}
	for _, n := range p.baseline.Nodes {
		if n.Op == ir.OpBatchNorm || n.Sched.Kernel != 0 {
			t.Errorf("baseline graph has %s (kernel %d): want batch norm folded and nothing fused", n.Describe(), n.Sched.Kernel)
		}
	}
	if _, err := Prepare(Options{Model: model, Batch: 1, Profile: prof, Dir: dir, Baseline: "tensorrt"}); err == nil {
		t.Error("baseline tensorrt was accepted")
	}
	if len(p.variants) != 2 || len(p.want) == 0 {
		t.Fatalf("%d variants, %d reference outputs", len(p.variants), len(p.want))
	}
	o0, o2 := p.variants[0], p.variants[1]
	if o2.v.Launches >= o0.v.Launches {
		t.Errorf("-O2 has %d launches, -O0 %d: want fewer", o2.v.Launches, o0.v.Launches)
	}
	for _, c := range p.variants {
		if _, err := os.Stat(c.ptx); err != nil {
			t.Errorf("-O%d: %v", c.v.OptLevel, err)
		}
	}
}

// TestGemmKernels: GEMM-core kernels rank by FLOPs, each against its
// unit's peak; other kernels are left out.
func TestGemmKernels(t *testing.T) {
	tc := costmodel.Kernel{Gemm: true, TensorCore: true}
	simt := costmodel.Kernel{Gemm: true}
	other := costmodel.Kernel{}
	v := Variant{Kernels: []KernelRow{
		{Kernel: "k0_small", FLOPs: 1e6, MeasuredUs: 1, TFLOPS: 1, Features: &simt},
		{Kernel: "k1_relu", FLOPs: 1e9, MeasuredUs: 1, TFLOPS: 1000, Features: &other},
		{Kernel: "k2_big", FLOPs: 1e9, MeasuredUs: 2, TFLOPS: 500, Features: &tc},
	}}
	got := gemmKernels(v, Ceilings{FP32TFLOPS: 50, FP16TCTFLOPS: 1000})
	if len(got) != 2 || got[0].Kernel != "k2_big" || got[1].Kernel != "k0_small" {
		t.Fatalf("gemmKernels = %+v, want k2_big then k0_small", got)
	}
	if got[0].Unit != "tensor cores" || math.Abs(got[0].PeakFrac-0.5) > 1e-9 || math.Abs(got[1].PeakFrac-0.02) > 1e-9 {
		t.Errorf("fractions %+v, want 0.5 of the tensor-core peak and 0.02 of FP32", got)
	}
}

// TestPeakFollowsPrecision: an fp16 report measures utilization against
// the tensor cores' peak, an fp32 one (or an fp16 one whose tensor-core
// peak was not measured) against FP32's.
func TestPeakFollowsPrecision(t *testing.T) {
	c := Ceilings{FP32TFLOPS: 65.8, FP16TCTFLOPS: 644}
	for _, tc := range []struct {
		precision string
		c         Ceilings
		want      float64
	}{{"fp32", c, 65.8}, {"fp16", c, 644}, {"fp16", Ceilings{FP32TFLOPS: 65.8}, 65.8}} {
		r := &Report{Precision: tc.precision, Ceilings: tc.c}
		if got := r.PeakTFLOPS(); got != tc.want {
			t.Errorf("%s with %+v: peak %g, want %g", tc.precision, tc.c, got, tc.want)
		}
	}
}

// TestRoofline: each kernel's floor is the longer of its FLOPs at the
// peak and its bytes at the bandwidth; the floors add up.
func TestRoofline(t *testing.T) {
	rows := []KernelRow{
		{Kernel: "k0_compute", FLOPs: 2e9, Bytes: 1e6}, // 2 ms of math at 1 TFLOP/s, 1 us of memory
		{Kernel: "k1_memory", FLOPs: 1e6, Bytes: 3e9},  // 3 ms of memory at 1 TB/s
	}
	if got := Roofline(rows, 1e12, 1e12); math.Abs(got-5) > 1e-9 {
		t.Errorf("Roofline = %v ms, want 5", got)
	}
	if got := Roofline(rows, 0, 1e12); got != 0 {
		t.Errorf("Roofline without a peak = %v, want 0", got)
	}
	var buf bytes.Buffer
	r := Report{Variants: []Variant{{OptLevel: 2, GraphMs: 10, FloorMs: 5, FloorUtil: 0.25}},
		GemmKernels: []KernelBench{{Kernel: "k1_big", FLOPs: 2e9, PeakFrac: 0.1, Unit: "tensor cores"}, {Kernel: "k3_big", FLOPs: 2e9, PeakFrac: 0.2, Unit: "tensor cores"},
			{Kernel: "k2_fast", FLOPs: 1e9, PeakFrac: 0.4, Unit: "tensor cores"}}}
	r.WriteMarkdown(&buf)
	if !strings.Contains(buf.String(), "add up to 5.0000 ms, so this partition into kernels reaches at most 25.0% utilization (graph replay takes 2.00x that)") {
		t.Errorf("the report does not state the roofline:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "Largest GEMM-core kernel at -O2: k1_big") || !strings.Contains(buf.String(), "Closest to its peak: k2_fast") {
		t.Errorf("the report does not name the largest and the best GEMM kernel:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "As large (2.00 GFLOP): k3_big 20.0%.\n") {
		t.Errorf("the report does not name the kernel as large as the largest:\n%s", buf.String())
	}
}
