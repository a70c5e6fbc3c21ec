package passes

import (
	"fmt"
	"math"
	"slices"
	"strings"

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
		a.Sched.Tile, a.Sched.SplitK, a.Sched.Reduce = costmodel.DefaultTile.Ints(), 1, ""
		before := k.Predict(c.Profile)
		if s, ok := c.Tuned[KernelKey(k)]; ok && tunedValid(k, s, c.Precision) {
			t := costmodel.TileFromInts(s.Tile)
			reduce := ""
			if s.Reduce == ir.ReduceCluster {
				// In pairs only: larger clusters measured slower than the
				// workspace even where tuning timed them (MaxClusterSplit).
				reduce = costmodel.ReduceOf(t, s.SplitK, c.Profile.Wgmma)
			}
			setSchedule(a, t, s.SplitK, reduce)
			c.decide(Decision{Pass: "tile", Kernel: a.Describe(), What: fmt.Sprintf("tuned tile %s", a.Sched),
				BeforeNs: before, AfterNs: k.Predict(c.Profile), Taken: true})
			continue
		}
		tiles := modelTiles(c.Precision)
		if f := c.ForceTile; f != nil && slices.Contains(candidateTiles(c.Precision), *f) {
			tiles = []costmodel.Tile{*f}
		}
		// Clusters only where tuning measures them (see costmodel.ReduceOf).
		clusters := c.ForceTile != nil
		best, bestNs := bestScheduleOf(k, c.Profile, tiles, clusters)
		if math.IsInf(bestNs, 1) { // the forced tile does not fit this kernel
			best, bestNs = bestScheduleOf(k, c.Profile, modelTiles(c.Precision), clusters)
		}
		a.Sched = best
		c.decide(Decision{Pass: "tile", Kernel: a.Describe(), What: fmt.Sprintf("tile %s", best),
			BeforeNs: before, AfterNs: bestNs, Taken: true})
	}
	return nil
}

// KernelKey names a kernel across compiles of one model: the ONNX nodes it
// computes, in order (a launch's Layers), or "" when it has none.
func KernelKey(k *Kernel) string {
	var layers []string
	for _, n := range k.Nodes {
		if n.Origin != "" {
			layers = append(layers, n.Origin)
		}
	}
	return strings.Join(layers, "+")
}

// tunedValid says a tuning file's schedule fits the kernel: a tile of the
// precision's candidates and a valid K split.
func tunedValid(k *Kernel, s ir.Schedule, precision string) bool {
	t := costmodel.TileFromInts(s.Tile)
	_, _, kk, _ := k.GemmShape()
	return len(s.Tile) == 5 && slices.Contains(candidateTiles(precision), t) && s.SplitK >= 1 && scheduleValid(t, kk, s.SplitK)
}

// candidateTiles are the tiles the tile pass chooses from.
func candidateTiles(precision string) []costmodel.Tile {
	tiles := costmodel.TileCandidates
	if precision == "fp16" {
		tiles = append(append([]costmodel.Tile{}, tiles...), costmodel.TensorCoreTiles...)
	}
	return tiles
}

// modelTiles are the candidates the cost model chooses from by itself:
// all but the tuning-only tiles.
func modelTiles(precision string) []costmodel.Tile {
	var out []costmodel.Tile
	for _, t := range candidateTiles(precision) {
		if !t.TuningOnly() {
			out = append(out, t)
		}
	}
	return out
}

// bestSchedule tries every tile and K split on a GEMM kernel and returns
// the one with the best predicted time (the kernel's schedule is left as
// it was).
func bestSchedule(k *Kernel, p costmodel.Profile, precision string) (ir.Schedule, float64) {
	return bestScheduleOf(k, p, modelTiles(precision), false)
}

// bestScheduleOf is bestSchedule over the given tiles (an infinite time
// when none is valid).
func bestScheduleOf(k *Kernel, p costmodel.Profile, tiles []costmodel.Tile, clusters bool) (ir.Schedule, float64) {
	a := k.Anchor
	saved := a.Sched
	defer func() { a.Sched = saved }()
	_, _, kk, _ := k.GemmShape()
	best, bestNs := saved, math.Inf(1)
	for _, t := range tiles {
		full := false // the unsplit grid fills a wave of the card
		for _, s := range costmodel.SplitKCandidates {
			if !scheduleValid(t, kk, s) {
				continue
			}
			reduce := ""
			if clusters {
				reduce = costmodel.ReduceOf(t, s, p.Wgmma)
			}
			setSchedule(a, t, s, reduce)
			if s == 1 && clusters {
				l := k.Launches()
				main := l[len(l)-1]
				full = main.Blocks >= p.Slots(main)
			} else if full && a.Sched.Reduce == ir.ReduceCluster {
				// A cluster split of a grid that already fills the card
				// measured slower than none (ResNet-18's layer2 3x3 on
				// 128x64: 36 us against 24 us on an H100), which the
				// model, compute-bound there, does not see.
				continue
			}
			if ns := k.Predict(p); ns < bestNs {
				best, bestNs = a.Sched, ns
			}
		}
	}
	return best, bestNs
}

// setSchedule puts GEMM anchor a on tile t with K split split ways, its
// partial sums added as reduce says (Schedule.Reduce).
func setSchedule(a *ir.Node, t costmodel.Tile, split int, reduce string) {
	a.Sched.Tile, a.Sched.SplitK, a.Sched.Reduce = t.Ints(), split, reduce
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
