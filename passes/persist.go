package passes

import (
	"fmt"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// Persist makes the GEMM kernels of Hopper's wgmma core that take more
// than one wave of the card persistent: one block per slot of the card,
// each running its tiles in turn and staging the next tile's first K
// slices while it writes the last one's output, so that a block's
// epilogue overlaps its next tile's loads instead of leaving the tensor
// cores idle while a new block starts. The cost model does not price the
// overlap: the decision's times are equal.
//
// Before: GEMM anchors have their tile and split (the tile pass). After:
// those that persist have Schedule.Persist, their grid.
func Persist(g *ir.Graph, c *Context) error {
	for _, k := range Kernels(g) {
		a := k.Anchor
		if !costmodel.IsGemmAnchor(a) {
			continue
		}
		a.Sched.Persist = 0
		l := k.Launches()
		_, nn, _, batch := k.GemmShape()
		blocks := c.Profile.PersistBlocks(l[len(l)-1], nn, batch, a.Sched.SplitK)
		if blocks < 2 {
			continue
		}
		ns := k.Predict(c.Profile)
		a.Sched.Persist = blocks
		c.decide(Decision{Pass: "persist", Kernel: a.Describe(), What: fmt.Sprintf("%d persistent blocks for %d tiles", blocks, l[len(l)-1].Blocks),
			BeforeNs: ns, AfterNs: ns, Taken: true})
	}
	return nil
}
