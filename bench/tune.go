package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"cnnc/codegen"
	"cnnc/frontend/onnx"
	"cnnc/internal/tensorfile"
	"cnnc/ir"
	"cnnc/passes"
	"cnnc/passes/costmodel"
	"cnnc/runtime"
	"cnnc/runtime/cuda"
)

// Tuning is a model's measured GEMM schedules: what `cnnc tune` writes and
// `--tuned` reads. Each GEMM kernel of the -O2 plan was timed on the
// cost model's own schedule and on every candidate tile (with the cost
// model's K split for it); it keeps the fastest.
type Tuning struct {
	Model      string  `json:"model"`
	Batch      int     `json:"batch"`
	Precision  string  `json:"precision"`
	Target     string  `json:"target"`
	Card       string  `json:"card"`
	SMClockMHz int     `json:"sm_clock_mhz"`
	Date       string  `json:"date"`
	Candidates int     `json:"candidates"` // compiles timed, the cost model's included
	TuneS      float64 `json:"tune_s"`
	// CostModelUs and TunedUs are the GEMM kernels' summed times on the
	// cost model's schedules and on the tuned ones.
	CostModelUs float64       `json:"cost_model_gemm_us"`
	TunedUs     float64       `json:"tuned_gemm_us"`
	Kernels     []TunedKernel `json:"kernels"`
}

// TunedKernel is one GEMM kernel's tuning.
type TunedKernel struct {
	Key         string  `json:"key"` // passes.KernelKey
	Kernel      string  `json:"kernel"`
	Tile        []int   `json:"tile"`
	SplitK      int     `json:"split_k"`
	Reduce      string  `json:"reduce,omitempty"` // ir.Schedule.Reduce
	Us          float64 `json:"measured_us"`
	CostModelUs float64 `json:"cost_model_us"` // on the cost model's schedule
	CostModel   string  `json:"cost_model_schedule"`
	// Tried is every candidate's time, by schedule.
	Tried map[string]float64 `json:"tried"`
}

// Schedules are the tuned schedules by kernel key, for passes.Options.Tuned.
func (t *Tuning) Schedules() map[string]ir.Schedule {
	out := map[string]ir.Schedule{}
	for _, k := range t.Kernels {
		out[k.Key] = ir.Schedule{Tile: k.Tile, SplitK: k.SplitK, Reduce: k.reduce()}
	}
	return out
}

// reduce is the kernel's Reduce; files written before it was recorded
// name it only in the tried schedule of the kernel's tile and split (one
// run gives a tile and split one Reduce).
func (k TunedKernel) reduce() string {
	if k.Reduce != "" {
		return k.Reduce
	}
	for _, text := range slices.Sorted(maps.Keys(k.Tried)) {
		s, err := ir.ParseSchedule(text)
		if err == nil && slices.Equal(s.Tile, k.Tile) && max(s.SplitK, 1) == max(k.SplitK, 1) {
			return s.Reduce
		}
	}
	return ""
}

// ReadTuning reads a tuning file.
func ReadTuning(path string) (*Tuning, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Tuning
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: not a tuning file: %v", path, err)
	}
	if len(t.Kernels) == 0 {
		return nil, fmt.Errorf("%s: a tuning file with no kernels", path)
	}
	return &t, nil
}

// Write writes the tuning file atomically.
func (t *Tuning) Write(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return tensorfile.WriteFileAtomic(path, append(b, '\n'))
}

// measuredSchedule is one kernel's schedule and time in one candidate
// compile.
type measuredSchedule struct {
	kernel string
	sched  ir.Schedule
	us     float64
}

// Tune times every GEMM kernel of opt.Model's -O2 plan under the cost
// model's schedules and under each candidate tile of opt.Precision, and
// keeps each kernel's fastest. Kernel times are CUDA-event medians of
// opt.Iters runs (graph-free, as bench's per-kernel rows).
func Tune(dev *cuda.Device, opt Options) (*Tuning, error) {
	start := time.Now()
	card, err := dev.Name()
	if err != nil {
		return nil, err
	}
	prec := cmp.Or(opt.Precision, "fp32")
	t := &Tuning{Model: filepath.Base(opt.Model), Batch: opt.Batch, Precision: prec, Target: opt.Target, Card: card,
		SMClockMHz: smClock(dev), Date: time.Now().UTC().Format("2006-01-02")}
	tiles := costmodel.TileCandidates
	if prec == "fp16" {
		tiles = costmodel.TensorCoreTiles
	}
	candidates := append([]*costmodel.Tile{nil}, make([]*costmodel.Tile, len(tiles))...)
	for i := range tiles {
		candidates[i+1] = &tiles[i]
	}
	// The candidates compile side by side (the CPU work), then run one
	// after another on the card.
	built := make([]*candidate, len(candidates))
	errs := make([]error, len(candidates))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, goruntime.NumCPU()/2))
	for i, force := range candidates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			built[i], errs[i] = compileCandidate(opt, force, filepath.Join(opt.Dir, fmt.Sprintf("tune_%d.ptx", i)))
		}()
	}
	wg.Wait()
	var base map[string]measuredSchedule
	best := map[string]measuredSchedule{}
	tried := map[string]map[string]float64{}
	var order []string
	for i, force := range candidates {
		var times map[string]measuredSchedule
		err := errs[i]
		if err == nil {
			times, err = built[i].time(dev, opt)
		}
		if err != nil {
			what := "the cost model's schedules"
			if force != nil {
				what = fmt.Sprintf("tile %v", *force)
			}
			return nil, fmt.Errorf("tuning %s with %s: %w", t.Model, what, err)
		}
		if force == nil {
			base = times
			for key := range times {
				order = append(order, key)
			}
			slices.Sort(order)
		}
		for key, ms := range times {
			if b, ok := best[key]; !ok || ms.us < b.us {
				best[key] = ms
			}
			if tried[key] == nil {
				tried[key] = map[string]float64{}
			}
			tried[key][ms.sched.String()] = ms.us
		}
		t.Candidates++
	}
	for _, key := range order {
		b, c := best[key], base[key]
		t.Kernels = append(t.Kernels, TunedKernel{Key: key, Kernel: c.kernel, Tile: b.sched.Tile, SplitK: b.sched.SplitK, Reduce: b.sched.Reduce,
			Us: b.us, CostModelUs: c.us, CostModel: c.sched.String(), Tried: tried[key]})
		t.CostModelUs += c.us
		t.TunedUs += b.us
	}
	t.TuneS = time.Since(start).Seconds()
	return t, nil
}

// candidate is one compile of a tuning run.
type candidate struct {
	g   *ir.Graph // the optimized graph: its kernels' schedules
	res *codegen.Result
	ptx string
}

// compileCandidate compiles the model at -O2, every GEMM kernel on force
// where it fits (the cost model's choice where force is nil).
func compileCandidate(opt Options, force *costmodel.Tile, ptx string) (*candidate, error) {
	g, err := onnx.Load(opt.Model, onnx.Options{Batch: opt.Batch})
	if err != nil {
		return nil, err
	}
	res, _, err := codegen.Build(g, codegen.Options{Model: filepath.Base(opt.Model), OptLevel: 2, Precision: opt.Precision, Target: opt.Target},
		passes.Options{Profile: opt.Profile, Model: filepath.Base(opt.Model), Layout: opt.Layout, ForceTile: force})
	if err != nil {
		return nil, err
	}
	if err := res.Write(ptx, false); err != nil {
		return nil, err
	}
	return &candidate{g: g, res: res, ptx: ptx}, nil
}

// time runs the candidate's kernels and returns each GEMM kernel's
// schedule and time by key (launches of one kernel, split-K's reduction,
// add up).
func (c *candidate) time(dev *cuda.Device, opt Options) (map[string]measuredSchedule, error) {
	ex, err := runtime.Load(dev, c.ptx)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	times, err := ex.TimeKernels(opt.Warmup, opt.Iters)
	if err != nil {
		return nil, err
	}
	out := map[string]measuredSchedule{}
	for _, k := range passes.Kernels(c.g) {
		if key := passes.KernelKey(k); key != "" && costmodel.IsGemmAnchor(k.Anchor) {
			out[key] = measuredSchedule{sched: ir.Schedule{Tile: k.Anchor.Sched.Tile, SplitK: max(k.Anchor.Sched.SplitK, 1), Reduce: k.Anchor.Sched.Reduce}}
		}
	}
	for i, l := range c.res.Plan.Launches {
		key := strings.Join(l.Layers, "+")
		if m, ok := out[key]; ok {
			if m.kernel == "" {
				m.kernel = l.Kernel
			}
			m.us += times[i].Median * 1e3
			out[key] = m
		}
	}
	return out, nil
}

// TuningScore is how a cost model ranks the candidates a tuning file
// measured.
type TuningScore struct {
	Kernels    int // the file's kernels found in the graph
	Candidates int // their measured schedules
	// PickedUs is the measured time of the candidate the cost model
	// predicts fastest, summed over the kernels; BestUs the fastest
	// measured one's.
	PickedUs, BestUs float64
	// LogErrMean and LogErrSD are the mean and standard deviation of
	// ln(predicted / measured) over every candidate.
	LogErrMean, LogErrSD float64
}

// ScoreTuning predicts, with p, every schedule t measured for the GEMM
// kernels of g (an -O2 graph, matched by passes.KernelKey) and scores the
// ranking against the measurements. Candidates are tried in sorted order,
// so ties pick alike every time; the kernels' schedules are left as they
// were.
func ScoreTuning(g *ir.Graph, t *Tuning, p costmodel.Profile) (TuningScore, error) {
	byKey := map[string]TunedKernel{}
	for _, k := range t.Kernels {
		byKey[k.Key] = k
	}
	var s TuningScore
	var logs []float64
	for _, k := range passes.Kernels(g) {
		tk, ok := byKey[passes.KernelKey(k)]
		if !ok || !costmodel.IsGemmAnchor(k.Anchor) || len(tk.Tried) == 0 {
			continue
		}
		saved := k.Anchor.Sched
		pickNs, pickUs, bestUs, n := math.Inf(1), 0.0, math.Inf(1), 0
		for _, text := range slices.Sorted(maps.Keys(tk.Tried)) {
			sched, err := ir.ParseSchedule(text)
			if err != nil {
				k.Anchor.Sched = saved
				return s, fmt.Errorf("kernel %s: %v", tk.Kernel, err)
			}
			us := tk.Tried[text]
			if us <= 0 { // no launch of the candidate was timed
				continue
			}
			n++
			k.Anchor.Sched.Tile, k.Anchor.Sched.SplitK, k.Anchor.Sched.Reduce = sched.Tile, max(sched.SplitK, 1), sched.Reduce
			ns := k.Predict(p)
			logs = append(logs, math.Log(ns/1e3/us))
			if ns < pickNs {
				pickNs, pickUs = ns, us
			}
			bestUs = min(bestUs, us)
		}
		k.Anchor.Sched = saved
		if n == 0 {
			continue
		}
		s.Kernels++
		s.Candidates += n
		s.PickedUs += pickUs
		s.BestUs += bestUs
	}
	if s.Kernels == 0 {
		return s, fmt.Errorf("no kernel of the tuning file (%s, batch %d) is in the graph", t.Model, t.Batch)
	}
	for _, l := range logs {
		s.LogErrMean += l / float64(len(logs))
	}
	for _, l := range logs {
		s.LogErrSD += (l - s.LogErrMean) * (l - s.LogErrMean) / float64(len(logs))
	}
	s.LogErrSD = math.Sqrt(s.LogErrSD)
	return s, nil
}
