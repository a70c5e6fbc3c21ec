package costmodel

import (
	"fmt"
	"math"
)

// Sample is one measured launch: what the model knows of it and the time
// it took on the card.
type Sample struct {
	Kernel     Kernel  `json:"features"`
	MeasuredNs float64 `json:"measured_ns"`
	// How it was compiled (Profile.HalfStorage and Profile.Wgmma): its
	// prediction takes them whatever profile predicts it.
	HalfStorage bool `json:"half_storage,omitempty"`
	Wgmma       bool `json:"wgmma,omitempty"`
}

// Predict is p's prediction of the sample, compiled as it was.
func (s Sample) Predict(p Profile) Prediction {
	p.HalfStorage, p.Wgmma = s.HalfStorage, s.Wgmma
	return p.Predict(s.Kernel)
}

// fitParam is one profile field the fit may move, within bounds.
type fitParam struct {
	name   string
	get    func(*Profile) *float64
	lo, hi float64
}

var fitParams = []fitParam{
	{"gemm_issue_efficiency", func(p *Profile) *float64 { return &p.GemmIssueEff }, 0.05, 1},
	{"shared_load_instr", func(p *Profile) *float64 { return &p.SharedLoadInstr }, 0.1, 10},
	{"stage_instr", func(p *Profile) *float64 { return &p.StageInstr }, 1, 200},
	{"slice_instr", func(p *Profile) *float64 { return &p.SliceInstr }, 0, 1000},
	{"store_instr", func(p *Profile) *float64 { return &p.StoreInstr }, 1, 500},
	{"strided_access_factor", func(p *Profile) *float64 { return &p.StridedAccessFactor }, 1, 32},
	{"gemm_full_warps", func(p *Profile) *float64 { return &p.GemmFullWarps }, 1, 64},
	{"depthwise_tap_instr", func(p *Profile) *float64 { return &p.DepthwiseTapInstr }, 1, 50},
	{"memory_efficiency", func(p *Profile) *float64 { return &p.MemEff }, 0.1, 1},
	{"tensor_core_efficiency", func(p *Profile) *float64 { return &p.TensorCoreEff }, 0.01, 1},
	{"wgmma_efficiency", func(p *Profile) *float64 { return &p.WgmmaEff }, 0.01, 1},
	{"launch_us", func(p *Profile) *float64 { return &p.LaunchUs }, 0.5, 20},
	{"gap_us", func(p *Profile) *float64 { return &p.GapUs }, 0, 20},
	{"slice_latency_us", func(p *Profile) *float64 { return &p.SliceLatencyUs }, 0.05, 5},
	{"depthwise_trips", func(p *Profile) *float64 { return &p.DepthwiseTrips }, 1, 20},
}

// LogError is the root mean square of log(predicted / measured) over the
// samples, each weighted by the square root of its measured time so that
// the long kernels, which make up the end-to-end time, count more than the
// many short ones: 0.1 means predictions off by about 10%.
func (p Profile) LogError(samples []Sample) float64 {
	var sum, weight float64
	for _, s := range samples {
		if s.MeasuredNs <= 0 {
			continue
		}
		d := math.Log(s.Predict(p).Ns / s.MeasuredNs)
		w := math.Sqrt(s.MeasuredNs)
		sum += w * d * d
		weight += w
	}
	if weight == 0 {
		return 0
	}
	return math.Sqrt(sum / weight)
}

// Fit adjusts the profile's efficiencies, instruction costs and latencies
// to measured launches: coordinate search on the log error, first over
// each parameter's whole range, then by shrinking multiplicative steps
// within its bounds. The datasheet and
// measured ceilings (peaks, bandwidth, SM count) stay fixed.
func (p Profile) Fit(samples []Sample) (Profile, error) {
	if len(samples) < len(fitParams) {
		return p, fmt.Errorf("%d measured launches, want at least %d to fit %d parameters", len(samples), len(fitParams), len(fitParams))
	}
	best := p
	bestErr := best.LogError(samples)
	// A coarse pass first tries each parameter across its whole range
	// (log-spaced; a latency floor only shows once it exceeds the
	// compute time, so small steps from a low start find nothing).
	for round := 0; round < 4; round++ {
		improved := false
		for _, fp := range fitParams {
			lo := math.Max(fp.lo, 1e-3)
			for i := 0; i <= 16; i++ {
				q := best
				*fp.get(&q) = lo * math.Pow(fp.hi/lo, float64(i)/16)
				if e := q.LogError(samples); e < bestErr-1e-9 {
					best, bestErr, improved = q, e, true
				}
			}
		}
		if !improved {
			break
		}
	}
	for _, step := range []float64{2, 1.5, 1.2, 1.1, 1.05, 1.02} {
		for round := 0; round < 20; round++ {
			improved := false
			for _, fp := range fitParams {
				for _, f := range []float64{step, 1 / step} {
					q := best
					v := fp.get(&q)
					base := *v
					if base == 0 {
						base = 0.1 // let a zero gap grow
					}
					*v = math.Min(fp.hi, math.Max(fp.lo, base*f))
					if e := q.LogError(samples); e < bestErr-1e-9 {
						best, bestErr, improved = q, e, true
					}
				}
			}
			if !improved {
				break
			}
		}
	}
	best.Calibrated = true
	return best, nil
}

// SolveGemmIssue sets the GEMM core's issue efficiency and shared-load
// cost from its measured efficiency effs[i] with two tiles on a problem of
// kSlices K steps that fills the card. Per block, FMAs/eff = u*X + v*Y
// with X the instructions other than shared loads, Y the shared loads,
// u = 1/GemmIssueEff and v = SharedLoadInstr/GemmIssueEff: two equations
// in u and v. Where they give no valid profile, only the issue efficiency
// is solved from the second tile.
func (p Profile) SolveGemmIssue(tiles [2]Tile, effs [2]float64, kSlices int) Profile {
	var fm, x, y [2]float64
	for i, t := range tiles {
		bk := float64(t.BK)
		ks := float64(kSlices)
		fm[i] = ks * bk * float64(t.TM*t.TN)
		x[i] = ks*(bk*float64(t.TM*t.TN)+p.StageInstr*bk*float64(t.BM+t.BN)/float64(t.Threads())+p.SliceInstr) +
			p.StoreInstr*float64(t.TM*t.TN)
		y[i] = ks * bk * float64(t.TM+t.TN)
	}
	lhs := [2]float64{fm[0] / effs[0], fm[1] / effs[1]}
	det := x[0]*y[1] - x[1]*y[0]
	if det != 0 {
		u := (lhs[0]*y[1] - lhs[1]*y[0]) / det
		v := (x[0]*lhs[1] - x[1]*lhs[0]) / det
		if u >= 1 && v > 0 {
			p.GemmIssueEff, p.SharedLoadInstr = 1/u, v/u
			return p
		}
	}
	p.GemmIssueEff = math.Min(1, (x[1]+p.SharedLoadInstr*y[1])/lhs[1])
	return p
}
