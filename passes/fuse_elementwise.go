package passes

import (
	"fmt"

	"cnnc/ir"
)

// FuseElementwise runs each chain of element-wise ops that no anchor took
// (and the chains after depthwise convolutions and pools) as one kernel:
// one pass over memory instead of one per op.
//
// Before: the anchor fusions ran. After: such chains share a kernel id.
func FuseElementwise(g *ir.Graph, c *Context) error {
	users := g.Users()
	for _, n := range g.Nodes {
		if n.Sched.Kernel != 0 {
			continue
		}
		head := isElementwise(n) || n.Op == ir.OpMaxPool || n.Op == ir.OpAvgPool || n.Op == ir.OpConv2D
		if !head {
			continue
		}
		chain := epilogueChain(g, n, users)
		if len(chain) == 0 {
			continue
		}
		nodes := append([]*ir.Node{n}, chain...)
		fuseIfFaster(g, c, "fuse-elementwise", fmt.Sprintf("%s then %s", n.Op.Name, opNames(chain)), nodes, nodes)
	}
	return nil
}
