package passes

import (
	"fmt"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// isElementwise reports whether a node is an element-wise op the kernel
// emitters can apply to a value in registers.
func isElementwise(n *ir.Node) bool {
	return n.Op.Class == ir.ClassElementwise && (n.Op.Unary != nil || n.Op.Binary != nil)
}

// epilogueChain follows single-use element-wise ops from root: each must
// read the chain value at its own shape (other operands may broadcast and
// come from anywhere outside the kernel) and not be a graph output unless
// it ends the chain.
func epilogueChain(g *ir.Graph, root *ir.Node, users map[*ir.Value][]*ir.Node) []*ir.Node {
	var chain []*ir.Node
	cur := root
	for !isOutput(g, cur.Out) && len(users[cur.Out]) == 1 {
		u := users[cur.Out][0]
		if !isElementwise(u) || u.Sched.Kernel != 0 || !ir.ShapeEqual(u.Out.Type.Shape, cur.Out.Type.Shape) {
			break
		}
		chain = append(chain, u)
		cur = u
	}
	return chain
}

// predictNodes is the predicted time of nodes run as separate kernels,
// each at its best tile.
func predictNodes(c *Context, nodes []*ir.Node) float64 {
	var ns float64
	for _, n := range nodes {
		if n.Op.View {
			continue
		}
		k := &Kernel{Nodes: []*ir.Node{n}}
		k.split()
		ns += predictBest(k, c)
	}
	return ns
}

// predictGroup is the predicted time of nodes run as one kernel at its
// best tile.
func predictGroup(c *Context, nodes []*ir.Node) float64 {
	k := &Kernel{Nodes: nodes}
	k.split()
	return predictBest(k, c)
}

// fuseIfFaster groups nodes into one kernel when the cost model predicts
// the fused kernel beats the parts, and records the decision.
func fuseIfFaster(g *ir.Graph, c *Context, pass, what string, separate, fused []*ir.Node) bool {
	before := predictNodes(c, separate)
	after := predictGroup(c, fused)
	d := Decision{Pass: pass, Kernel: fused[0].Describe(), What: what, BeforeNs: before, AfterNs: after, Taken: after < before}
	c.decide(d)
	if !d.Taken {
		return false
	}
	id := fused[0].Sched.Kernel
	if id == 0 {
		id = c.newKernelID(g)
	}
	for _, n := range fused {
		n.Sched.Kernel = id
	}
	return true
}

// FuseEpilogue applies the chain of element-wise ops after a convolution
// or matrix product (bias, activation, residual add, a squeeze-excite
// sigmoid) in the producer's registers: one kernel, one write.
//
// Before: batch-norm folded. After: such chains share their anchor's
// kernel id.
func FuseEpilogue(g *ir.Graph, c *Context) error {
	users := g.Users()
	for _, n := range g.Nodes {
		if n.Sched.Kernel != 0 || !costmodel.IsGemmAnchor(n) {
			continue
		}
		chain := epilogueChain(g, n, users)
		if len(chain) == 0 {
			continue
		}
		nodes := append([]*ir.Node{n}, chain...)
		fuseIfFaster(g, c, "fuse-epilogue", fmt.Sprintf("%d-op epilogue %s", len(chain), opNames(chain)), nodes, nodes)
	}
	return nil
}

func opNames(nodes []*ir.Node) string {
	s := ""
	for i, n := range nodes {
		if i > 0 {
			s += "+"
		}
		s += n.Op.Name
	}
	return s
}
