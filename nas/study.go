package nas

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"cnnc/bench"
	"cnnc/codegen"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes"
	"cnnc/passes/costmodel"
	"cnnc/runtime"
	"cnnc/runtime/cuda"
)

// Shard is part i (0-based) of n of a sweep.
type Shard struct{ I, N int }

// Range is the candidates [first, first+count) of shard s of total.
func (s Shard) Range(total int) (first, count int) {
	per := (total + s.N - 1) / s.N
	first = min(total, s.I*per)
	return first, min(total, first+per) - first
}

// ParseShard reads "i/N" (1-based i on the command line).
func ParseShard(v string) (Shard, error) {
	var i, n int
	if _, err := fmt.Sscanf(v, "%d/%d", &i, &n); err != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q, want i/N with 1 <= i <= N", v)
	}
	return Shard{i - 1, n}, nil
}

// WriteResults appends results as JSON lines.
func WriteResults(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// ReadResults reads JSON-lines files of results (a sweep's shards) and
// merges them by candidate id: a measurement wins over a prediction.
func ReadResults(paths []string) ([]Result, error) {
	byID := map[int]Result{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for line := 1; sc.Scan(); line++ {
			var r Result
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %v", p, line, err)
			}
			if old, ok := byID[r.ID]; !ok || r.MeasuredMs > 0 || old.MeasuredMs == 0 {
				if ok && r.MeasuredMs == 0 {
					r.MeasuredMs, r.MeasUtil, r.Card = old.MeasuredMs, old.MeasUtil, old.Card
				}
				byID[r.ID] = r
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]Result, 0, len(byID))
	for _, r := range byID {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Result) int { return a.ID - b.ID })
	return out, nil
}

// Kendall is Kendall's tau-b of two samples.
func Kendall(a, b []float64) float64 {
	var conc, disc, tiesA, tiesB float64
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			da, db := a[i]-a[j], b[i]-b[j]
			switch {
			case da == 0 && db == 0:
			case da == 0:
				tiesA++
			case db == 0:
				tiesB++
			case da*db > 0:
				conc++
			default:
				disc++
			}
		}
	}
	den := math.Sqrt((conc + disc + tiesA) * (conc + disc + tiesB))
	if den == 0 {
		return 0
	}
	return (conc - disc) / den
}

// ParetoFront returns the indices of results not dominated in (lower
// latency, more FLOPs: capacity for its time), by latency ascending.
func ParetoFront(rs []Result, latency func(Result) float64) []int {
	idx := make([]int, 0, len(rs))
	for i := range rs {
		if rs[i].Error == "" && latency(rs[i]) > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(x, y int) int {
		lx, ly := latency(rs[x]), latency(rs[y])
		switch {
		case lx < ly:
			return -1
		case lx > ly:
			return 1
		}
		return int(rs[y].FLOPs - rs[x].FLOPs)
	})
	var front []int
	best := int64(-1)
	for _, i := range idx {
		if rs[i].FLOPs > best {
			front = append(front, i)
			best = rs[i].FLOPs
		}
	}
	return front
}

// ToMeasure picks which candidates to time on the GPU: the predicted
// Pareto front, then a random sample, m in all.
func ToMeasure(rs []Result, m int, seed uint64) []int {
	chosen := map[int]bool{}
	var out []int
	for _, i := range ParetoFront(rs, func(r Result) float64 { return r.PredictedMs }) {
		if len(out) < m {
			chosen[i] = true
			out = append(out, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d6561))
	for _, i := range rng.Perm(len(rs)) {
		if len(out) >= m {
			break
		}
		if !chosen[i] && rs[i].Error == "" {
			chosen[i] = true
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// Compiled is a candidate compiled for measuring: its PTX artifact and
// the graph that gives its inputs.
type Compiled struct {
	PTX   string
	Graph *ir.Graph
}

// Compile compiles a candidate at -O2 with random weights into dir (no
// GPU needed, so candidates compile in parallel while others are timed).
func Compile(r *Result, prof costmodel.Profile, dir string) (*Compiled, error) {
	g, err := Build(r.Candidate, r.Batch, true)
	if err != nil {
		return nil, err
	}
	res, _, err := codegen.Build(g, codegen.Options{Model: g.Name, OptLevel: 2}, passes.Options{Profile: prof, Model: g.Name})
	if err != nil {
		return nil, err
	}
	ptx := filepath.Join(dir, fmt.Sprintf("%s_%d.ptx", g.Name, r.ID))
	if err := res.Write(ptx, false); err != nil {
		return nil, err
	}
	return &Compiled{PTX: ptx, Graph: g}, nil
}

// Time runs a compiled candidate on dev (the median of iters with plain
// launches, and with CUDA-graph replay), filling the measured fields of r.
func Time(dev *cuda.Device, r *Result, c *Compiled, peakTFLOPS float64, iters int) error {
	ex, err := runtime.Load(dev, c.PTX)
	if err != nil {
		return err
	}
	defer ex.Close()
	if _, err := bench.RunTensors(ex, interp.RandomInputs(c.Graph, 1)); err != nil {
		return err
	}
	// The cost model predicts kernels launched one by one (what
	// `cnnc bench` times with launches); graph replay is recorded beside.
	t, err := ex.TimeEndToEnd(5, iters, false)
	if err != nil {
		return err
	}
	graph, err := ex.TimeEndToEnd(5, iters, true)
	if err != nil {
		return err
	}
	r.MeasuredMs, r.MeasuredGraphMs = t.Median, graph.Median
	r.MeasUtil = float64(r.FLOPs) / (t.Median * 1e-3) / (peakTFLOPS * 1e12)
	r.Card, _ = dev.Name()
	// Every kernel's time, with what the cost model knew of it, as a
	// bench report that `cnnc bench --fit` takes.
	kt, err := ex.TimeKernels(3, iters)
	if err != nil {
		return err
	}
	raw := make([]float64, len(kt))
	for i := range kt {
		raw[i] = kt[i].Median * 1e3
	}
	v := bench.Variant{OptLevel: 2, Launches: len(kt), PlainMs: t.Median, GraphMs: graph.Median}
	v.Kernels, v.EventOverheadUs = bench.KernelRows(ex.Plan(), c.Graph, raw, t.Median, peakTFLOPS*1e12)
	r.KernelTimes = &bench.Report{Date: time.Now().UTC().Format("2006-01-02"), Card: r.Card, Model: c.Graph.Name, Batch: r.Batch,
		Precision: "fp32", ModelFLOPs: r.FLOPs, Variants: []bench.Variant{v}}
	return nil
}

// Summary is what the study concludes from a sweep.
type Summary struct {
	Candidates, Measured        int
	SpearmanPred, KendallPred   float64 // predicted vs measured latency
	SpearmanFLOPs, KendallFLOPs float64 // model FLOPs vs measured latency
	FrontPred, FrontMeas        []int   // candidate ids on each Pareto front
	FrontOverlap                int
	MeasuredMsTotal             float64 // GPU time spent measuring (median latencies)
}

// Summarize compares predictions and measurements over the measured
// candidates.
func Summarize(rs []Result) Summary {
	s := Summary{Candidates: len(rs)}
	var measured []Result
	for _, r := range rs {
		if r.MeasuredMs > 0 {
			measured = append(measured, r)
		}
	}
	s.Measured = len(measured)
	pred, meas, flops := make([]float64, len(measured)), make([]float64, len(measured)), make([]float64, len(measured))
	for i, r := range measured {
		pred[i], meas[i], flops[i] = r.PredictedMs, r.MeasuredMs, float64(r.FLOPs)
		s.MeasuredMsTotal += r.MeasuredMs
	}
	s.SpearmanPred, s.KendallPred = bench.Spearman(pred, meas), Kendall(pred, meas)
	s.SpearmanFLOPs, s.KendallFLOPs = bench.Spearman(flops, meas), Kendall(flops, meas)
	ids := func(front []int, in []Result) []int {
		out := make([]int, len(front))
		for i, f := range front {
			out[i] = in[f].ID
		}
		return out
	}
	s.FrontPred = ids(ParetoFront(measured, func(r Result) float64 { return r.PredictedMs }), measured)
	s.FrontMeas = ids(ParetoFront(measured, func(r Result) float64 { return r.MeasuredMs }), measured)
	for _, id := range s.FrontPred {
		if slices.Contains(s.FrontMeas, id) {
			s.FrontOverlap++
		}
	}
	return s
}

// WriteMarkdown prints the summary.
func (s Summary) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "%d candidates predicted, %d measured\n\n", s.Candidates, s.Measured)
	if s.Measured < 2 {
		fmt.Fprintln(w, "Too few measured candidates to compare predictions with measurements.")
		return
	}
	fmt.Fprintln(w, "| against measured latency | Spearman | Kendall |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	fmt.Fprintf(w, "| cost-model prediction | %.3f | %.3f |\n", s.SpearmanPred, s.KendallPred)
	fmt.Fprintf(w, "| model FLOPs | %.3f | %.3f |\n", s.SpearmanFLOPs, s.KendallFLOPs)
	fmt.Fprintf(w, "\nPareto front (latency vs FLOPs) of the measured candidates: %d from predictions, %d from measurements, %d in both.\n",
		len(s.FrontPred), len(s.FrontMeas), s.FrontOverlap)
}
