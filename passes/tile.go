package passes

import (
	"fmt"

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
		_, _, kk, _ := costmodel.GemmShape(a)
		a.Sched.Tile, a.Sched.SplitK = costmodel.DefaultTile.Ints(), 1
		before := k.Predict(c.Profile)
		best, bestNs := a.Sched, before
		for _, t := range costmodel.TileCandidates {
			for _, s := range costmodel.SplitKCandidates {
				if s > 1 && costmodel.KSlice(kk, s, t.BK)*(s-1) >= kk {
					continue // some split would be empty
				}
				a.Sched.Tile, a.Sched.SplitK = t.Ints(), s
				if ns := k.Predict(c.Profile); ns < bestNs {
					best, bestNs = a.Sched, ns
				}
			}
		}
		a.Sched = best
		c.decide(Decision{Pass: "tile", Kernel: a.Describe(), What: fmt.Sprintf("tile %s", best),
			BeforeNs: before, AfterNs: bestNs, Taken: true})
	}
	return nil
}
