package passes

import (
	"fmt"
	"slices"

	"cnnc/ir"
)

// ChooseLayout stores groups of activations channels last (NHWC) where the
// cost model predicts their kernels run faster so. A group is the values
// joined by same-shape element-wise ops (which must share a layout, since
// they index operands and output alike); it may go channels last only if
// convolutions, max or average pools and same-shape element-wise ops
// produce all of it and read it (a convolution or pool as its input; a
// global pooling reads it too), and none
// of it is a graph input or output: every other kernel, and the caller,
// sees NCHW. A convolution
// reading or writing such a group converts on the way, so no transposes
// are added. The IR's shapes and meaning do not change (ir.LayoutOf).
//
// Before: unfused nodes. After: the producers of the chosen groups carry
// schedule layout=nhwc.
func ChooseLayout(g *ir.Graph, c *Context) error {
	if c.Layout == LayoutNCHW {
		return nil
	}
	groups := layoutGroups(g)
	if len(groups) == 0 {
		return nil
	}
	for _, grp := range groups {
		before := predictNodes(c, grp.kernels)
		for _, n := range grp.producers {
			n.Sched.Layout = ir.LayoutNHWC
		}
		after := predictNodes(c, grp.kernels)
		d := Decision{Pass: "choose-layout", Kernel: grp.producers[0].Describe(),
			What:     fmt.Sprintf("channels last for %d values read by %d kernels", len(grp.producers), len(grp.kernels)),
			BeforeNs: before, AfterNs: after, Taken: after < before || c.Layout == ir.LayoutNHWC}
		c.decide(d)
		if !d.Taken {
			for _, n := range grp.producers {
				n.Sched.Layout = ""
			}
		}
	}
	// A group alone pays for the conversions at its edges; all of them
	// together convert only at the network's edges. Take all where that
	// beats the group-by-group choice.
	var all []*ir.Node
	seen := map[*ir.Node]bool{}
	chosen := map[*ir.Node]string{}
	for _, grp := range groups {
		for _, n := range grp.kernels {
			if !seen[n] {
				seen[n] = true
				all = append(all, n)
			}
		}
		for _, n := range grp.producers {
			chosen[n] = n.Sched.Layout
		}
	}
	before := predictNodes(c, all)
	for _, grp := range groups {
		for _, n := range grp.producers {
			n.Sched.Layout = ir.LayoutNHWC
		}
	}
	after := predictNodes(c, all)
	d := Decision{Pass: "choose-layout", Kernel: groups[0].producers[0].Describe(),
		What: fmt.Sprintf("channels last for all %d groups at once", len(groups)), BeforeNs: before, AfterNs: after, Taken: after < before}
	c.decide(d)
	if !d.Taken {
		for n, l := range chosen {
			n.Sched.Layout = l
		}
	}
	return nil
}

// LayoutNCHW, as Options.Layout, keeps every value NCHW.
const LayoutNCHW = "nchw"

// layoutGroup is a set of values that can go channels last together:
// their producers, and every kernel whose cost the choice changes
// (producers and the convolutions reading them).
type layoutGroup struct {
	producers []*ir.Node
	kernels   []*ir.Node
}

// layoutGroups finds the groups, in graph order.
func layoutGroups(g *ir.Graph) []layoutGroup {
	parent := map[*ir.Node]*ir.Node{}
	var find func(n *ir.Node) *ir.Node
	find = func(n *ir.Node) *ir.Node {
		for parent[n] != n {
			parent[n] = parent[parent[n]]
			n = parent[n]
		}
		return n
	}
	candidate := func(n *ir.Node) bool {
		return n != nil && len(n.Out.Type.Shape) == 4 && n.Out.Type.DType.IsFloat() &&
			(n.Op == ir.OpConv2D || ir.IsWindowPool(n) || ir.IsLayoutElementwise(n))
	}
	for _, n := range g.Nodes {
		if candidate(n) {
			parent[n] = n
		}
	}
	// Element-wise ops join the groups of their operands of their own
	// shape; a grouped (depthwise) convolution joins its input's group: its
	// kernel runs threads along the output's memory, and reading the other
	// layout would make every load stride.
	bad := map[*ir.Node]bool{}
	for _, n := range g.Nodes {
		if !candidate(n) || ir.IsWindowPool(n) || (n.Op == ir.OpConv2D && n.Int("group") == 1) {
			continue
		}
		ins := n.Inputs
		if n.Op == ir.OpConv2D {
			ins = ins[:1]
		}
		for _, in := range ins {
			if !slices.Equal(in.Type.Shape, n.Out.Type.Shape) && n.Op != ir.OpConv2D {
				continue // a scalar or a per-channel broadcast, read logically
			}
			if !candidate(in.Def) {
				bad[n] = true // reads an NCHW-only value
				continue
			}
			parent[find(in.Def)] = find(n)
		}
	}
	outputs := map[*ir.Value]bool{}
	for _, v := range g.Outputs {
		outputs[v] = true
	}
	users := g.Users()
	for _, n := range g.Nodes {
		if !candidate(n) {
			continue
		}
		if outputs[n.Out] {
			bad[n] = true
		}
		for _, u := range users[n.Out] {
			spatial := n.Out.Type.Shape[2]*n.Out.Type.Shape[3] > 1
			ok := (u.Op == ir.OpConv2D && u.Inputs[0] == n.Out && (len(u.Inputs) < 2 || u.Inputs[1] != n.Out)) ||
				ir.IsWindowPool(u) || ir.IsGlobalPool(u) ||
				(candidate(u) && u.Op != ir.OpConv2D && (slices.Equal(n.Out.Type.Shape, u.Out.Type.Shape) || !spatial))
			if !ok {
				bad[n] = true
			}
		}
	}
	byRoot := map[*ir.Node]*layoutGroup{}
	var order []*ir.Node
	for _, n := range g.Nodes {
		if !candidate(n) {
			continue
		}
		r := find(n)
		grp, ok := byRoot[r]
		if !ok {
			grp = &layoutGroup{}
			byRoot[r] = grp
			order = append(order, r)
		}
		grp.producers = append(grp.producers, n)
		if bad[n] {
			bad[r] = true
		}
	}
	var out []layoutGroup
	for _, r := range order {
		if bad[r] {
			continue
		}
		grp := byRoot[r]
		in := map[*ir.Node]bool{}
		for _, n := range grp.producers {
			in[n] = true
		}
		kernels := append([]*ir.Node{}, grp.producers...)
		seen := map[*ir.Node]bool{}
		for _, n := range grp.producers {
			for _, u := range users[n.Out] {
				if !in[u] && !seen[u] {
					seen[u] = true
					kernels = append(kernels, u)
				}
			}
		}
		grp.kernels = kernels
		out = append(out, *grp)
	}
	return out
}
