package passes

import (
	"slices"

	"cnnc/ir"
)

// replaceAllUses makes every reader of from (and the graph outputs) read
// to instead.
func replaceAllUses(g *ir.Graph, from, to *ir.Value) {
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == from {
				n.Inputs[i] = to
			}
		}
	}
	for i, v := range g.Outputs {
		if v == from {
			g.Outputs[i] = to
		}
	}
}

// removeNodes drops the given nodes from the graph.
func removeNodes(g *ir.Graph, dead map[*ir.Node]bool) {
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *ir.Node) bool { return dead[n] })
}

// moveBefore moves the graph's last node (just made by NewNode or
// NewConst) to stand right before at.
func moveBefore(g *ir.Graph, at *ir.Node) {
	last := g.Nodes[len(g.Nodes)-1]
	g.Nodes = g.Nodes[:len(g.Nodes)-1]
	i := slices.Index(g.Nodes, at)
	g.Nodes = slices.Insert(g.Nodes, i, last)
}

// constBefore adds a const node right before at and returns its value.
func constBefore(g *ir.Graph, at *ir.Node, t *ir.Tensor, blob string) *ir.Value {
	v := g.NewConst(t, blob, at.Origin).Out
	moveBefore(g, at)
	return v
}

// constData returns a value's constant data, if it is a const with data.
func constData(v *ir.Value) (*ir.Tensor, bool) {
	if v.Def == nil || v.Def.Op != ir.OpConst || v.Def.Const == nil {
		return nil, false
	}
	return v.Def.Const, true
}

// isOutput reports whether v is a graph output.
func isOutput(g *ir.Graph, v *ir.Value) bool { return slices.Contains(g.Outputs, v) }
