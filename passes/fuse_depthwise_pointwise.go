package passes

import (
	"slices"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// kernelNodes lists the members of kernel id (or just n when it has none).
func kernelNodes(g *ir.Graph, n *ir.Node) []*ir.Node {
	if n.Sched.Kernel == 0 {
		return []*ir.Node{n}
	}
	var out []*ir.Node
	for _, m := range g.Nodes {
		if m.Sched.Kernel == n.Sched.Kernel {
			out = append(out, m)
		}
	}
	return out
}

// isPointwise is a 1x1, stride-1, unpadded, ungrouped convolution.
func isPointwise(n *ir.Node) bool {
	if n.Op != ir.OpConv2D || n.Int("group") != 1 {
		return false
	}
	w := n.Inputs[1].Type.Shape
	for _, v := range n.Ints("pads") {
		if v != 0 {
			return false
		}
	}
	s := n.Ints("strides")
	return w[2] == 1 && w[3] == 1 && s[0] == 1 && s[1] == 1
}

// FuseDepthwisePointwise computes a depthwise convolution (with its
// epilogue) inside the 1x1 convolution that reads it, as the GEMM's B
// operand: the depthwise output never goes to memory, the pair of an
// inverted-residual block's last two convolutions is one kernel.
//
// Before: fuse-epilogue ran (and fuse-elementwise has not: the depthwise
// chain is formed here). After: such pairs share the 1x1 conv's kernel id.
func FuseDepthwisePointwise(g *ir.Graph, c *Context) error {
	users := g.Users()
	for _, dw := range g.Nodes {
		if !costmodel.IsDepthwise(dw) || dw.Sched.Kernel != 0 {
			continue
		}
		chain := epilogueChain(g, dw, users)
		root := dw
		if len(chain) > 0 {
			root = chain[len(chain)-1]
		}
		if isOutput(g, root.Out) || len(users[root.Out]) != 1 {
			continue
		}
		pw := users[root.Out][0]
		if !isPointwise(pw) || pw.Inputs[0] != root.Out {
			continue
		}
		dwNodes := append([]*ir.Node{dw}, chain...)
		pwNodes := kernelNodes(g, pw)
		if slices.ContainsFunc(pwNodes, func(n *ir.Node) bool { return n != pw && costmodel.IsGemmAnchor(n) }) {
			continue // pw sums a partner's GEMM (fuse-shortcut-conv): one operand per K side
		}
		separate := append([]*ir.Node{}, dwNodes...)
		separate = append(separate, pwNodes...)
		if len(chain) > 0 {
			// Unfused, the chain would still run as one kernel with dw.
			separate = append([]*ir.Node{}, pwNodes...)
			before := predictGroup(c, dwNodes) + predictGroup(c, pwNodes)
			after := predictGroup(c, append(append([]*ir.Node{}, dwNodes...), pwNodes...))
			d := Decision{Pass: "fuse-depthwise-pointwise", Kernel: pw.Describe(), What: "depthwise " + opNames(dwNodes) + " into the 1x1 conv",
				BeforeNs: before, AfterNs: after, Taken: after < before}
			c.decide(d)
			if d.Taken {
				joinKernel(g, c, pw, dwNodes)
			}
			continue
		}
		fuseIfFaster(g, c, "fuse-depthwise-pointwise", "depthwise conv into the 1x1 conv", separate, append(dwNodes, pwNodes...))
	}
	return nil
}

// joinKernel puts extra nodes into anchor's kernel (giving it one first).
func joinKernel(g *ir.Graph, c *Context, anchor *ir.Node, extra []*ir.Node) {
	id := anchor.Sched.Kernel
	if id == 0 {
		id = c.newKernelID(g)
		anchor.Sched.Kernel = id
	}
	for _, n := range extra {
		n.Sched.Kernel = id
	}
}
