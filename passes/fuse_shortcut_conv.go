package passes

import (
	"slices"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// is1x1 is an ungrouped, unpadded 1x1 convolution of any stride.
func is1x1(n *ir.Node) bool {
	if n.Op != ir.OpConv2D || n.Int("group") != 1 {
		return false
	}
	w := n.Inputs[1].Type.Shape
	return w[2] == 1 && w[3] == 1 && !slices.ContainsFunc(n.Ints("pads"), func(p int) bool { return p != 0 })
}

// FuseShortcutConv runs a 1x1 convolution whose output is only added to
// another 1x1 convolution's (a ResNet bottleneck's expansion and its
// projection shortcut) inside the other's GEMM: C = [A1 A2] [W1; W2], one
// K loop over both inputs' channels. The shortcut's output never goes to
// memory (at batch 32, 51 MB written and read again in ResNet-50's
// layer1), its launch goes, and the add costs nothing: its sum is the
// accumulator.
//
// Before: fuse-epilogue ran (the add and what follows it are in one of
// the convolutions' kernel). After: the other convolution joins that
// kernel; the later of the two in node order anchors it, the earlier is
// its partner (passes.Kernel.Partner).
func FuseShortcutConv(g *ir.Graph, c *Context) error {
	users := g.Users()
	pos := map[*ir.Node]int{}
	for i, n := range g.Nodes {
		pos[n] = i
	}
	for _, add := range g.Nodes {
		if add.Op != ir.OpAdd || add.Sched.Kernel == 0 || add.Inputs[0] == add.Inputs[1] {
			continue
		}
		for _, pair := range [][2]*ir.Value{{add.Inputs[0], add.Inputs[1]}, {add.Inputs[1], add.Inputs[0]}} {
			owner, alone := pair[0].Def, pair[1].Def
			if owner == nil || alone == nil || !shortcutPair(g, users, owner, alone, add) {
				continue
			}
			ownerNodes := kernelNodes(g, owner)
			if ownerNodes[0] != owner || slices.ContainsFunc(ownerNodes[1:], costmodel.IsGemmAnchor) {
				continue // a prologue or a partner already
			}
			fused := append([]*ir.Node{alone}, ownerNodes...)
			slices.SortFunc(fused, func(a, b *ir.Node) int { return pos[a] - pos[b] })
			before := predictGroup(c, ownerNodes) + predictGroup(c, []*ir.Node{alone})
			after := predictGroup(c, fused)
			d := Decision{Pass: "fuse-shortcut-conv", Kernel: owner.Describe(), What: "1x1 conv " + alone.Describe() + " summed in the GEMM",
				BeforeNs: before, AfterNs: after, Taken: after < before}
			c.decide(d)
			if d.Taken {
				joinKernel(g, c, owner, []*ir.Node{alone})
			}
			break
		}
	}
	return nil
}

// shortcutPair says alone, an unfused 1x1 convolution read only by add,
// can be summed into the GEMM of owner, a 1x1 convolution whose kernel
// starts its epilogue with add: the two compute outputs of one shape and
// layout from inputs of one layout.
func shortcutPair(g *ir.Graph, users map[*ir.Value][]*ir.Node, owner, alone, add *ir.Node) bool {
	if !is1x1(owner) || !is1x1(alone) || owner.Sched.Kernel != add.Sched.Kernel || alone.Sched.Kernel != 0 {
		return false
	}
	if isOutput(g, alone.Out) || len(users[alone.Out]) != 1 || isOutput(g, owner.Out) || len(users[owner.Out]) != 1 {
		return false
	}
	return ir.ShapeEqual(owner.Out.Type.Shape, alone.Out.Type.Shape) && ir.LayoutOf(owner.Out) == ir.LayoutOf(alone.Out) &&
		ir.LayoutOf(owner.Inputs[0]) == ir.LayoutOf(alone.Inputs[0])
}
