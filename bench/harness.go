package bench

import (
	"cmp"
	"cnnc/artifact"
	"cnnc/runtime/cudnn"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"cnnc/codegen"
	"cnnc/frontend/onnx"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes"
	"cnnc/passes/costmodel"
	"cnnc/runtime"
	"cnnc/runtime/cuda"
	"cnnc/runtime/nvml"
)

// Options configure a benchmark run.
type Options struct {
	Model   string // the ONNX file
	Batch   int
	Iters   int
	Warmup  int
	Seed    uint64
	Profile costmodel.Profile // the cost model's device
	Dir     string            // where the compiled artifacts go
	// Precision of both variants: fp32 (default) or fp16 storage.
	Precision string
	// Progress, when set, shows a progress bar of the steps there.
	Progress io.Writer
	// Layout is choose-layout's policy for -O2 ("", "nchw" or "nhwc"; see
	// passes.Options.Layout).
	Layout string
	// Baseline "cudnn" also runs the model layer by layer with cuDNN
	// (runtime/cudnn) in the same precision, checked and timed alike.
	Baseline string
	// Tuned are measured GEMM schedules for -O2 (Tuning.Schedules).
	Tuned map[string]ir.Schedule
	// Target is the codegen target ("" for codegen's default; DeviceTarget
	// gives the card's own).
	Target string
}

// DeviceTarget is the codegen target for dev's card (codegen.TargetFor).
func DeviceTarget(dev *cuda.Device) (string, error) {
	major, err := dev.Attribute(cuda.AttrComputeCapabilityMajor)
	if err != nil {
		return "", err
	}
	minor, err := dev.Attribute(cuda.AttrComputeCapabilityMinor)
	if err != nil {
		return "", err
	}
	return codegen.TargetFor(major, minor), nil
}

// Baseline is a library running the same model layer by layer.
type Baseline struct {
	Name    string  `json:"name"`
	Error   string  `json:"error,omitempty"` // why it did not run
	Library string  `json:"library"`
	Version int     `json:"version"`
	Layers  int     `json:"layers"`
	RelL2   float64 `json:"rel_l2_vs_interp"`
	// RelL2Cnnc compares its outputs with cnnc -O2's.
	RelL2Cnnc float64 `json:"rel_l2_vs_cnnc_O2"`
	PlainMs   float64 `json:"median_ms_launches"`
	GraphMs   float64 `json:"median_ms_graph"`
	UtilGraph float64 `json:"utilization_graph"`
	// SpeedupO2 is the baseline's time over cnnc -O2's (graph replay):
	// above 1, cnnc is faster.
	SpeedupO2 float64 `json:"cnnc_O2_speedup_graph"`
}

// KernelRow is one launch of a variant, predicted and measured.
type KernelRow struct {
	Kernel      string   `json:"kernel"`
	Ops         []string `json:"ops"`
	Layers      []string `json:"layers"`
	PredictedUs float64  `json:"predicted_us"`
	MeasuredUs  float64  `json:"measured_us"`
	FLOPs       int64    `json:"model_flops"`
	Bytes       int64    `json:"min_bytes"`
	TFLOPS      float64  `json:"tflops"`
	GBs         float64  `json:"gbs"`
	Util        float64  `json:"utilization"`
	// Features are what the cost model knew of the launch (for --fit).
	Features *costmodel.Kernel `json:"features,omitempty"`
}

// Variant is one compile of the model (-O0 or -O2) and its measurements.
type Variant struct {
	OptLevel    int     `json:"opt_level"`
	CompileS    float64 `json:"compile_s"`
	Launches    int     `json:"launches"`
	ArenaBytes  int64   `json:"arena_bytes"`
	RelL2       float64 `json:"rel_l2_vs_interp"`
	PlainMs     float64 `json:"median_ms_launches"`
	GraphMs     float64 `json:"median_ms_graph"`
	ImagesPerS  float64 `json:"images_per_s"`
	UtilPlain   float64 `json:"utilization_launches"`
	UtilGraph   float64 `json:"utilization_graph"`
	BusyPct     float64 `json:"nvml_busy_pct"`
	PredictedMs float64 `json:"predicted_ms"`
	KernelSumMs float64 `json:"kernel_sum_ms"` // event intervals, summed
	// EventOverheadUs is what each timing event adds to a kernel's
	// interval; measured kernel times are net of it.
	EventOverheadUs float64 `json:"event_overhead_us"`
	// FloorMs is the kernels' roofline floors added up (Roofline), and
	// FloorUtil the utilization the variant would reach at it: the most
	// its partition into kernels allows.
	FloorMs   float64     `json:"roofline_floor_ms"`
	FloorUtil float64     `json:"roofline_utilization"`
	Spearman  float64     `json:"spearman_predicted_vs_measured"`
	Kernels   []KernelRow `json:"kernels"`
	Decisions []string    `json:"decisions,omitempty"`
}

// Report is a whole benchmark run.
type Report struct {
	Date         string            `json:"date"`
	Card         string            `json:"card"`
	SMClockMHz   int               `json:"sm_clock_mhz"`
	Model        string            `json:"model"`
	Batch        int               `json:"batch"`
	Precision    string            `json:"precision"`
	Target       string            `json:"target,omitempty"` // the codegen target both variants were compiled for
	ModelFLOPs   int64             `json:"model_flops"`
	Params       int64             `json:"params"`
	Ceilings     Ceilings          `json:"ceilings"`
	Profile      costmodel.Profile `json:"profile"`
	Variants     []Variant         `json:"variants"`
	SpeedupPlain float64           `json:"speedup_launches"`
	SpeedupGraph float64           `json:"speedup_graph"`
	Peers        []Peer            `json:"peers,omitempty"`
	Baseline     *Baseline         `json:"baseline,omitempty"`
	// GemmKernels are -O2's GEMM-core kernels, largest first, each against
	// the peak of the unit it runs on (the kernel benchmark).
	GemmKernels []KernelBench `json:"gemm_kernels,omitempty"`
}

// KernelBench is one GEMM-core kernel against its unit's measured peak.
type KernelBench struct {
	Kernel     string  `json:"kernel"`
	Layers     int     `json:"layers"`
	FLOPs      int64   `json:"model_flops"`
	MeasuredUs float64 `json:"measured_us"`
	TFLOPS     float64 `json:"tflops"`
	// Unit is "tensor cores" (against the fp16 tensor-core peak) or
	// "FP32" (the SIMT core, against the FP32 peak).
	Unit     string  `json:"unit"`
	PeakFrac float64 `json:"fraction_of_unit_peak"`
}

// PeakTFLOPS is the peak the report's utilization is measured against:
// the fp16 tensor cores' for an fp16 run, FP32's otherwise (both measured
// in the same run).
func (r *Report) PeakTFLOPS() float64 {
	if r.Precision == "fp16" && r.Ceilings.FP16TCTFLOPS > 0 {
		return r.Ceilings.FP16TCTFLOPS
	}
	return r.Ceilings.FP32TFLOPS
}

// PeakName names PeakTFLOPS's unit.
func (r *Report) PeakName() string {
	if r.Precision == "fp16" && r.Ceilings.FP16TCTFLOPS > 0 {
		return "fp16 tensor-core"
	}
	return "FP32"
}

// gemmKernels ranks a variant's GEMM-core kernels by FLOPs.
func gemmKernels(v Variant, c Ceilings) []KernelBench {
	var out []KernelBench
	for _, k := range v.Kernels {
		if k.Features == nil || !k.Features.Gemm || k.MeasuredUs <= 0 || k.FLOPs == 0 {
			continue
		}
		b := KernelBench{Kernel: k.Kernel, Layers: len(k.Layers), FLOPs: k.FLOPs, MeasuredUs: k.MeasuredUs, TFLOPS: k.TFLOPS, Unit: "FP32"}
		peak := c.FP32TFLOPS
		if k.Features.TensorCore {
			b.Unit, peak = "tensor cores", c.FP16TCTFLOPS
		}
		if peak > 0 {
			b.PeakFrac = b.TFLOPS / peak
		}
		out = append(out, b)
	}
	slices.SortStableFunc(out, func(a, b KernelBench) int { return cmp.Compare(b.FLOPs, a.FLOPs) })
	return out
}

// Run benchmarks a model at -O0 and -O2 on dev.
func Run(dev *cuda.Device, opt Options) (*Report, error) {
	bar := newBar(opt.Progress, 8)
	defer bar.Finish()
	p, err := prepare(opt, bar)
	if err != nil {
		return nil, err
	}
	return p.run(dev, bar)
}

// Prepared is a benchmark's CPU work, done before the GPU is needed: the
// interpreter's reference outputs and both variants compiled.
type Prepared struct {
	opt      Options
	rep      *Report
	inputs   []*interp.Tensor
	want     []*interp.Tensor
	variants []compiled
	baseline *ir.Graph // the graph the baseline runs, batch-norm folded
}

// compiled is one variant ready to run.
type compiled struct {
	v    Variant
	outs []*interp.Tensor // its outputs on the reference input
	ptx  string
	g    *ir.Graph // the optimized graph: its kernels give the cost model's features
	plan *artifact.Plan
}

// Prepare does a benchmark's CPU work (no GPU needed): callers that
// benchmark many models prepare them in parallel and run them one by one
// (RunPrepared). opt.Dir must be distinct per prepared benchmark.
func Prepare(opt Options) (*Prepared, error) {
	return prepare(opt, newBar(nil, 8))
}

// RunPrepared times a prepared benchmark on dev.
func RunPrepared(dev *cuda.Device, p *Prepared) (*Report, error) {
	return p.run(dev, newBar(nil, 8))
}

func prepare(opt Options, bar *progressbar.ProgressBar) (*Prepared, error) {
	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), Model: filepath.Base(opt.Model),
		Batch: opt.Batch, Profile: opt.Profile, Precision: opt.Precision, Target: cmp.Or(opt.Target, codegen.DefaultTarget)}
	if rep.Precision == "" {
		rep.Precision = "fp32"
	}
	bar.Describe("reference (interpreter)")
	g, err := onnx.Load(opt.Model, onnx.Options{Batch: opt.Batch})
	if err != nil {
		return nil, err
	}
	p := &Prepared{opt: opt, rep: rep, inputs: interp.RandomInputs(g, opt.Seed)}
	if p.want, err = interp.Run(g, p.inputs); err != nil {
		return nil, err
	}
	bar.Add(1)
	switch opt.Baseline {
	case "":
	case "cudnn":
		// cuDNN runs the imported graph with batch norm folded into the
		// convolutions, as any cuDNN deployment does; nothing fused.
		if p.baseline, err = onnx.Load(opt.Model, onnx.Options{Batch: opt.Batch}); err != nil {
			return nil, err
		}
		if _, err := passes.Run(p.baseline, passes.Options{OptLevel: 2, Profile: opt.Profile, Model: rep.Model,
			Disable: []string{"choose-layout", "fuse-epilogue", "fuse-depthwise-pointwise", "fuse-pooling", "fuse-elementwise", "tile", "plan-memory"}}); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("baseline %q, want cudnn", opt.Baseline)
	}
	for _, lvl := range []int{0, 2} {
		bar.Describe(fmt.Sprintf("compile -O%d", lvl))
		c, err := compileVariant(opt, lvl, rep)
		if err != nil {
			return nil, fmt.Errorf("-O%d: %w", lvl, err)
		}
		p.variants = append(p.variants, *c)
		bar.Add(1)
	}
	return p, nil
}

func compileVariant(opt Options, lvl int, rep *Report) (*compiled, error) {
	start := time.Now()
	g, err := onnx.Load(opt.Model, onnx.Options{Batch: opt.Batch})
	if err != nil {
		return nil, err
	}
	res, pc, err := codegen.Build(g, codegen.Options{Model: rep.Model, OptLevel: lvl, Precision: opt.Precision, Target: opt.Target},
		passes.Options{Profile: opt.Profile, Model: rep.Model, Layout: opt.Layout, Tuned: opt.Tuned})
	if err != nil {
		return nil, err
	}
	c := &compiled{g: g, plan: res.Plan, v: Variant{OptLevel: lvl, CompileS: time.Since(start).Seconds(), Launches: len(res.Plan.Launches), ArenaBytes: res.Plan.Arena}}
	for _, d := range pc.Decisions {
		c.v.Decisions = append(c.v.Decisions, d.String())
	}
	rep.ModelFLOPs = res.Plan.FLOPs
	rep.Params = 0
	for _, n := range g.Nodes {
		if n.Op == ir.OpConst && n.Out.Type.DType.IsFloat() {
			rep.Params += n.Out.Type.Elems()
		}
	}
	c.ptx = filepath.Join(opt.Dir, fmt.Sprintf("model_O%d.ptx", lvl))
	if err := res.Write(c.ptx, false); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *Prepared) run(dev *cuda.Device, bar *progressbar.ProgressBar) (*Report, error) {
	rep := p.rep
	var err error
	if rep.Card, err = dev.Name(); err != nil {
		return nil, err
	}
	sms, err := dev.Attribute(cuda.AttrMultiprocessorCount)
	if err != nil {
		return nil, err
	}
	rep.SMClockMHz = smClock(dev)
	bar.Describe("ceilings")
	if rep.Ceilings, err = MeasureCeilings(dev, sms); err != nil {
		return nil, err
	}
	bar.Add(1)
	for i := range p.variants {
		c := &p.variants[i]
		bar.Describe(fmt.Sprintf("run -O%d", c.v.OptLevel))
		if err := p.runVariant(dev, c); err != nil {
			return nil, fmt.Errorf("-O%d: %w", c.v.OptLevel, err)
		}
		rep.Variants = append(rep.Variants, c.v)
		bar.Add(1)
	}
	o0, o2 := rep.Variants[0], rep.Variants[1]
	rep.SpeedupPlain = o0.PlainMs / o2.PlainMs
	rep.SpeedupGraph = o0.GraphMs / o2.GraphMs
	rep.GemmKernels = gemmKernels(o2, rep.Ceilings)
	if p.baseline != nil {
		// A baseline that cannot run (no cuDNN, an op it lacks) is
		// reported; cnnc's own results stand.
		bar.Describe("cuDNN baseline")
		if rep.Baseline, err = p.runCudnn(dev); err != nil {
			rep.Baseline = &Baseline{Name: "cudnn", Error: OneLine(err)}
		}
	}
	return rep, nil
}

// runCudnn runs the baseline graph with cuDNN on the reference input,
// checks it against the interpreter and cnnc -O2, and times it.
func (p *Prepared) runCudnn(dev *cuda.Device) (*Baseline, error) {
	at, err := cudnn.Load()
	if err != nil {
		return nil, err
	}
	net, err := cudnn.Build(dev, p.baseline, p.rep.Precision)
	if err != nil {
		return nil, err
	}
	defer net.Close()
	in := make([][]float32, len(p.inputs))
	for i, x := range p.inputs {
		in[i] = x.Data
	}
	outs, err := net.Run(in)
	if err != nil {
		return nil, err
	}
	b := &Baseline{Name: "cudnn", Library: at, Version: cudnn.Version(), Layers: net.Layers()}
	o2 := p.variants[len(p.variants)-1]
	for i, o := range outs {
		got := &interp.Tensor{Shape: p.want[i].Shape, Data: o}
		b.RelL2 = math.Max(b.RelL2, interp.RelL2(got, p.want[i]))
		if i < len(o2.outs) {
			b.RelL2Cnnc = math.Max(b.RelL2Cnnc, interp.RelL2(got, o2.outs[i]))
		}
	}
	if b.PlainMs, err = net.Time(p.opt.Warmup, p.opt.Iters, false); err != nil {
		return nil, err
	}
	if b.GraphMs, err = net.Time(p.opt.Warmup, p.opt.Iters, true); err != nil {
		return nil, err
	}
	b.UtilGraph = float64(p.rep.ModelFLOPs) / (b.GraphMs * 1e-3) / (p.rep.PeakTFLOPS() * 1e12)
	b.SpeedupO2 = b.GraphMs / o2.v.GraphMs
	return b, nil
}

func (p *Prepared) runVariant(dev *cuda.Device, c *compiled) error {
	opt, v := p.opt, &c.v
	ex, err := runtime.Load(dev, c.ptx)
	if err != nil {
		return err
	}
	defer ex.Close()
	outs, err := RunTensors(ex, p.inputs)
	if err != nil {
		return err
	}
	for i, o := range outs {
		v.RelL2 = math.Max(v.RelL2, interp.RelL2(o, p.want[i]))
	}
	c.outs = outs
	plain, err := ex.TimeEndToEnd(opt.Warmup, opt.Iters, false)
	if err != nil {
		return err
	}
	if v.BusyPct, err = BusyWhile(dev, func() error {
		_, err := ex.TimeEndToEnd(0, opt.Iters, false)
		return err
	}); err != nil {
		return err
	}
	graph, err := ex.TimeEndToEnd(opt.Warmup, opt.Iters, true)
	if err != nil {
		return err
	}
	kernels, err := ex.TimeKernels(opt.Warmup, opt.Iters)
	if err != nil {
		return err
	}
	peak := p.rep.PeakTFLOPS() * 1e12
	flops := c.plan.FLOPs
	v.PlainMs, v.GraphMs = plain.Median, graph.Median
	v.ImagesPerS = float64(opt.Batch) / (graph.Median * 1e-3)
	v.UtilPlain = float64(flops) / (plain.Median * 1e-3) / peak
	v.UtilGraph = float64(flops) / (graph.Median * 1e-3) / peak
	raw := make([]float64, len(c.plan.Launches))
	for i := range raw {
		raw[i] = kernels[i].Median * 1e3
		v.KernelSumMs += kernels[i].Median
	}
	v.Kernels, v.EventOverheadUs = KernelRows(c.plan, c.g, raw, plain.Median, peak)
	if v.FloorMs = Roofline(v.Kernels, peak, p.rep.Ceilings.DRAMGBs*1e9); v.FloorMs > 0 {
		v.FloorUtil = float64(flops) / (v.FloorMs * 1e-3) / peak
	}
	var pred, meas []float64
	for _, row := range v.Kernels {
		v.PredictedMs += row.PredictedUs / 1e3
		pred, meas = append(pred, row.PredictedUs), append(meas, row.MeasuredUs)
	}
	v.Spearman = Spearman(pred, meas)
	return nil
}

// Roofline is the sum over kernels of each one's floor in ms: the longer
// of its model FLOPs at peak FLOP/s and its minimum bytes at bw bytes/s
// (0 without both ceilings).
func Roofline(rows []KernelRow, peak, bw float64) float64 {
	if peak <= 0 || bw <= 0 {
		return 0
	}
	var s float64
	for _, r := range rows {
		s += max(float64(r.FLOPs)/peak, float64(r.Bytes)/bw)
	}
	return s * 1e3
}

// KernelRows describes a compiled plan's launches with their measured
// times: intervalsUs are the kernels' CUDA-event intervals, endToEndMs the
// untimed run's, g the optimized graph (whose kernels give the cost
// model's features). Measured times are net of the events' cost, which is
// returned too; utilization is against peak FLOP/s.
func KernelRows(plan *artifact.Plan, g *ir.Graph, intervalsUs []float64, endToEndMs, peak float64) ([]KernelRow, float64) {
	var features []costmodel.Kernel
	for _, k := range passes.Kernels(g) {
		features = append(features, k.Launches()...)
	}
	net, overhead := NetKernelTimes(intervalsUs, endToEndMs)
	rows := make([]KernelRow, 0, len(plan.Launches))
	for i, l := range plan.Launches {
		us := net[i]
		row := KernelRow{Kernel: l.Kernel, Ops: l.Ops, Layers: l.Layers, PredictedUs: l.PredictedNs / 1e3, MeasuredUs: us,
			FLOPs: l.FLOPs, Bytes: l.Bytes}
		if us > 0 {
			row.TFLOPS = float64(l.FLOPs) / (us * 1e-6) / 1e12
			row.GBs = float64(l.Bytes) / (us * 1e-6) / 1e9
			row.Util = float64(l.FLOPs) / (us * 1e-6) / peak
		}
		if i < len(features) {
			row.Features = &features[i]
		}
		rows = append(rows, row)
	}
	return rows, overhead
}

// NetKernelTimes takes the timing events' own cost off kernels' event
// intervals (microseconds): what the intervals add up to beyond the
// untimed end-to-end time (milliseconds), spread evenly over the launches,
// never more than half an interval. It returns the net times and the
// per-launch overhead, so that kernel times add up to the end-to-end time.
func NetKernelTimes(intervalsUs []float64, endToEndMs float64) ([]float64, float64) {
	var sum float64
	for _, us := range intervalsUs {
		sum += us
	}
	overhead := 0.0
	if n := len(intervalsUs); n > 0 {
		overhead = math.Max(0, (sum-endToEndMs*1e3)/float64(n))
	}
	net := make([]float64, len(intervalsUs))
	for i, us := range intervalsUs {
		net[i] = math.Max(us-overhead, 0.5*us)
	}
	return net, overhead
}

// RunTensors runs a loaded model once on interpreter tensors and returns
// its outputs as tensors of the plan's shapes.
func RunTensors(ex *runtime.Executor, inputs []*interp.Tensor) ([]*interp.Tensor, error) {
	in := make([][]float32, len(inputs))
	for i, x := range inputs {
		in[i] = x.Data
	}
	outs, err := ex.Run(in)
	if err != nil {
		return nil, err
	}
	got := make([]*interp.Tensor, len(outs))
	for i, o := range outs {
		got[i] = &interp.Tensor{Shape: ex.Plan().Outputs[i].Shape, Data: o}
	}
	return got, nil
}

// Spearman is the rank correlation of two samples (average ranks for
// ties); 0 where it is undefined.
func Spearman(a, b []float64) float64 {
	if len(a) != len(b) || len(a) < 2 {
		return 0
	}
	ra, rb := ranks(a), ranks(b)
	var ma, mb float64
	for i := range ra {
		ma += ra[i]
		mb += rb[i]
	}
	ma /= float64(len(ra))
	mb /= float64(len(rb))
	var cov, va, vb float64
	for i := range ra {
		cov += (ra[i] - ma) * (rb[i] - mb)
		va += (ra[i] - ma) * (ra[i] - ma)
		vb += (rb[i] - mb) * (rb[i] - mb)
	}
	if va == 0 || vb == 0 {
		return 0
	}
	return cov / math.Sqrt(va*vb)
}

func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		switch {
		case x[i] < x[j]:
			return -1
		case x[i] > x[j]:
			return 1
		}
		return 0
	})
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = avg
		}
		i = j + 1
	}
	return r
}

func newBar(w io.Writer, steps int) *progressbar.ProgressBar {
	if w == nil {
		return progressbar.NewOptions(steps, progressbar.OptionSetVisibility(false))
	}
	return progressbar.NewOptions(steps, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
}

// IsTerminal reports whether f is a terminal (for the progress bar).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Busy samples NVML's GPU busy percentage while timing runs.
type Busy struct{ s *nvml.Sampler }

// StartBusy starts sampling dev's GPU busy percentage (a no-op without NVML).
func StartBusy(dev *cuda.Device) Busy {
	nd, err := NVMLDevice(dev)
	if err != nil {
		return Busy{}
	}
	return Busy{nd.Sample(20 * time.Millisecond)}
}

// busyWindow is how long BusyWhile keeps the GPU working: NVML updates
// its utilization over periods of a sixth of a second to a second, so a
// shorter window reads nothing.
const busyWindow = time.Second

// BusyWhile repeats run for at least busyWindow while sampling NVML's GPU
// busy percentage (-1 without NVML).
func BusyWhile(dev *cuda.Device, run func() error) (float64, error) {
	b := StartBusy(dev)
	start := time.Now()
	for time.Since(start) < busyWindow {
		if err := run(); err != nil {
			b.Stop()
			return -1, err
		}
	}
	return b.Stop(), nil
}

// Stop returns the mean busy percentage, or -1 when NVML gave nothing.
func (b Busy) Stop() float64 {
	if b.s == nil {
		return -1
	}
	defer nvml.Shutdown()
	u, err := b.s.Stop()
	if err != nil {
		return -1
	}
	return u.Percent
}

// NVMLDevice initializes NVML and finds dev in it by PCI address (CUDA and
// NVML may number cards differently); the caller shuts NVML down.
func NVMLDevice(dev *cuda.Device) (*nvml.Device, error) {
	if err := nvml.Init(); err != nil {
		return nil, err
	}
	bus, err := dev.PCIBusID()
	if err == nil {
		var nd *nvml.Device
		if nd, err = nvml.DeviceByPCIBusID(bus); err == nil {
			return nd, nil
		}
	}
	nvml.Shutdown()
	return nil, err
}

func smClock(dev *cuda.Device) int {
	nd, err := NVMLDevice(dev)
	if err != nil {
		return 0
	}
	defer nvml.Shutdown()
	c, err := nd.SMClock()
	if err != nil {
		return 0
	}
	return c
}

// OneLine folds a multi-line error (a verifier's list, say) into one line.
func OneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
