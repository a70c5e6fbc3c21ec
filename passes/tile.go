package passes

import (
	"fmt"
	"math"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// Tile chooses, for every kernel on the GEMM core, the block tile and the
// K split with the best predicted time: small problems get small tiles or
// split K so that the grid fills the card; large ones keep large tiles.
//
// Before: kernels are formed. After: every GEMM anchor has a schedule
// tile (and split_k when it pays).
func Tile(g *ir.Graph, c *Context) error {
	for _, k := range Kernels(g) {
		a := k.Anchor
		if !costmodel.IsGemmAnchor(a) {
			continue
		}
		a.Sched.Tile, a.Sched.SplitK = costmodel.DefaultTile.Ints(), 1
		before := k.Predict(c.Profile)
		best, bestNs := bestSchedule(k, c.Profile, c.Precision)
		a.Sched = best
		c.decide(Decision{Pass: "tile", Kernel: a.Describe(), What: fmt.Sprintf("tile %s", best),
			BeforeNs: before, AfterNs: bestNs, Taken: true})
	}
	return nil
}

// bestSchedule tries every tile and K split on a GEMM kernel and returns
// the one with the best predicted time (the kernel's schedule is left as
// it was).
func bestSchedule(k *Kernel, p costmodel.Profile, precision string) (ir.Schedule, float64) {
	a := k.Anchor
	saved := a.Sched
	defer func() { a.Sched = saved }()
	_, _, kk, _ := costmodel.GemmShape(a)
	best, bestNs := saved, math.Inf(1)
	tiles := costmodel.TileCandidates
	if precision == "fp16" {
		tiles = append(append([]costmodel.Tile{}, tiles...), costmodel.TensorCoreTiles...)
	}
	for _, t := range tiles {
		for _, s := range costmodel.SplitKCandidates {
			if !scheduleValid(t, kk, s) {
				continue
			}
			a.Sched.Tile, a.Sched.SplitK = t.Ints(), s
			if ns := k.Predict(p); ns < bestNs {
				best, bestNs = a.Sched, ns
			}
		}
	}
	return best, bestNs
}

// predictBest is a kernel's predicted time at its best schedule (GEMM
// kernels) or as it is.
func predictBest(k *Kernel, c *Context) float64 {
	if costmodel.IsGemmAnchor(k.Anchor) {
		_, ns := bestSchedule(k, c.Profile, c.Precision)
		return ns
	}
	return k.Predict(c.Profile)
}

// scheduleValid rejects a split of K that would leave a split empty, and
// a deep K step (BK above the default's) longer than a split's K, which
// would be mostly padding.
func scheduleValid(t costmodel.Tile, k, split int) bool {
	if split > 1 && costmodel.KSlice(k, split, t.BK)*(split-1) >= k {
		return false
	}
	return t.BK <= costmodel.DefaultTile.BK || (k+split-1)/split >= t.BK
}
