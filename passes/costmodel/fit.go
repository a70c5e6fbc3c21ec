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
}

// fitParam is one profile field the fit may move, within bounds.
type fitParam struct {
	name   string
	get    func(*Profile) *float64
	lo, hi float64
}

var fitParams = []fitParam{
	{"gemm_efficiency", func(p *Profile) *float64 { return &p.GemmEff }, 0.05, 1},
	{"gemm_efficiency_4x4", func(p *Profile) *float64 { return &p.GemmEffSmall }, 0.05, 1},
	{"memory_efficiency", func(p *Profile) *float64 { return &p.MemEff }, 0.1, 1},
	{"tensor_core_efficiency", func(p *Profile) *float64 { return &p.TensorCoreEff }, 0.01, 1},
	{"launch_us", func(p *Profile) *float64 { return &p.LaunchUs }, 0.5, 20},
	{"gap_us", func(p *Profile) *float64 { return &p.GapUs }, 0, 20},
	{"slice_latency_us", func(p *Profile) *float64 { return &p.SliceLatencyUs }, 0.05, 5},
	{"depthwise_trips", func(p *Profile) *float64 { return &p.DepthwiseTrips }, 1, 20},
}

// LogError is the root mean square of log(predicted / measured) over the
// samples: 0.1 means predictions off by about 10% on a typical launch.
func (p Profile) LogError(samples []Sample) float64 {
	var sum float64
	n := 0
	for _, s := range samples {
		if s.MeasuredNs <= 0 {
			continue
		}
		d := math.Log(p.Predict(s.Kernel).Ns / s.MeasuredNs)
		sum += d * d
		n++
	}
	if n == 0 {
		return 0
	}
	return math.Sqrt(sum / float64(n))
}

// Fit adjusts the profile's efficiencies and latencies to measured
// launches: coordinate descent on the log error, each parameter scaled by
// shrinking multiplicative steps within its bounds. The datasheet and
// measured ceilings (peaks, bandwidth, SM count) stay fixed.
func (p Profile) Fit(samples []Sample) (Profile, error) {
	if len(samples) < len(fitParams) {
		return p, fmt.Errorf("%d measured launches, want at least %d to fit %d parameters", len(samples), len(fitParams), len(fitParams))
	}
	best := p
	bestErr := best.LogError(samples)
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
	if best.GemmEffSmall > best.GemmEff {
		// The 8x8 tile is never slower than 4x4 in the model's shape.
		best.GemmEff = best.GemmEffSmall
	}
	best.Calibrated = true
	return best, nil
}
