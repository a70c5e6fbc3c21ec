package nas

import (
	"cnnc/bench"
	"runtime"
	"sync"

	"cnnc/ir"
	"cnnc/passes"
	"cnnc/passes/costmodel"
)

// Result is one candidate's prediction (and measurement, once measured).
type Result struct {
	Candidate
	Batch       int     `json:"batch"`
	FLOPs       int64   `json:"model_flops"`
	Params      int64   `json:"params"`
	Kernels     int     `json:"kernels"`
	PredictedMs float64 `json:"predicted_ms"`
	PredUtil    float64 `json:"predicted_utilization"`
	MeasuredMs  float64 `json:"measured_ms,omitempty"`
	// MeasuredGraphMs is the latency with CUDA-graph replay. (The sweep
	// in bench/results/nas-h200-2026-11-26 measured only graph replay, as
	// measured_ms.)
	MeasuredGraphMs float64 `json:"measured_graph_ms,omitempty"`
	MeasUtil        float64 `json:"measured_utilization,omitempty"`
	Card            string  `json:"card,omitempty"`
	// KernelTimes is a measured candidate's per-kernel times as a bench
	// report (written apart, by `cnnc nas --kernels`).
	KernelTimes *bench.Report `json:"-"`
	Error       string        `json:"error,omitempty"`
}

// Predict compiles a candidate's graph through the -O2 passes (no code
// generation) and sums the cost model's kernel predictions.
func Predict(c Candidate, batch int, prof costmodel.Profile) Result {
	r := Result{Candidate: c, Batch: batch}
	g, err := Build(c, batch, false)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	for _, n := range g.Nodes {
		r.FLOPs += n.FLOPs()
		if n.Op == ir.OpConst {
			r.Params += n.Out.Type.Elems()
		}
	}
	if _, err := passes.Run(g, passes.Options{OptLevel: 2, Profile: prof, Model: g.Name}); err != nil {
		r.Error = err.Error()
		return r
	}
	var ns float64
	kernels := passes.Kernels(g)
	for _, k := range kernels {
		ns += k.Predict(prof)
		r.Kernels += len(k.Launches())
	}
	r.PredictedMs = ns / 1e6
	r.PredUtil = prof.Utilization(r.FLOPs, ns)
	return r
}

// PredictAll predicts candidates on every core, results in input order.
func PredictAll(cands []Candidate, batch int, prof costmodel.Profile, progress func()) []Result {
	out := make([]Result, len(cands))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = Predict(cands[i], batch, prof)
				if progress != nil {
					progress()
				}
			}
		}()
	}
	for i := range cands {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}
