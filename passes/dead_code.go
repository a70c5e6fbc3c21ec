package passes

import "cnnc/ir"

// DeadCode removes nodes whose values no output needs.
//
// Before: any graph. After: every node's value is read by a node or is a
// graph output.
func DeadCode(g *ir.Graph, _ *Context) error {
	live := map[*ir.Value]bool{}
	for _, v := range g.Outputs {
		live[v] = true
	}
	dead := map[*ir.Node]bool{}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if !live[n.Out] {
			dead[n] = true
			continue
		}
		for _, in := range n.Inputs {
			live[in] = true
		}
	}
	removeNodes(g, dead)
	return nil
}
