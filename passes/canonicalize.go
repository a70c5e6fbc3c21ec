package passes

import (
	"slices"

	"cnnc/ir"
)

// Canonicalize gives each idiom one form so that later patterns match:
// reshape of reshape becomes one reshape, reshapes and transposes that
// change nothing disappear, a 2-D MatMul by a constant followed by the
// addition of a constant bias row becomes a Gemm, and x * sigmoid(x)
// (SiLU as exporters write it, EfficientNet's activation) becomes
// swish(x): one element-wise op, which fuse-epilogue puts in the
// producer's kernel, where the two-node diamond stayed a kernel of its
// own that read x back from memory.
//
// Before: a verified graph. After: the same function; no reshape reads a
// reshape, no reshape or transpose is the identity, no mul multiplies a
// value by its own sigmoid.
func Canonicalize(g *ir.Graph, _ *Context) error {
	users := g.Users()
	dead := map[*ir.Node]bool{}
	for _, n := range slices.Clone(g.Nodes) {
		switch n.Op {
		case ir.OpReshape:
			if src := n.Inputs[0]; src.Def != nil && src.Def.Op == ir.OpReshape {
				n.Inputs[0] = src.Def.Inputs[0]
			}
			if ir.ShapeEqual(n.Inputs[0].Type.Shape, n.Out.Type.Shape) && !isOutput(g, n.Out) {
				replaceAllUses(g, n.Out, n.Inputs[0])
				dead[n] = true
			}
		case ir.OpTranspose:
			perm := n.Ints("perm")
			identity := true
			for i, p := range perm {
				identity = identity && p == i
			}
			if identity && !isOutput(g, n.Out) {
				replaceAllUses(g, n.Out, n.Inputs[0])
				dead[n] = true
			}
		case ir.OpMatMul:
			if gemm := matmulAddAsGemm(g, n, users); gemm != nil {
				dead[n] = true
			}
		case ir.OpMul:
			if sig := mulBySigmoid(g, n); sig != nil {
				dead[n], dead[sig] = true, true
			}
		}
	}
	removeNodes(g, dead)
	return DeadCode(g, nil)
}

// matmulAddAsGemm rewrites y = add(matmul(x[M,K], W[K,N]), b[N]) with
// constant W and b as y = gemm(x, W, b), returning the new node.
func matmulAddAsGemm(g *ir.Graph, mm *ir.Node, users map[*ir.Value][]*ir.Node) *ir.Node {
	x, w := mm.Inputs[0], mm.Inputs[1]
	if x.Type.Rank() != 2 || w.Type.Rank() != 2 || len(users[mm.Out]) != 1 || isOutput(g, mm.Out) {
		return nil
	}
	if _, ok := constData(w); !ok {
		return nil
	}
	add := users[mm.Out][0]
	if add.Op != ir.OpAdd {
		return nil
	}
	bias := add.Inputs[1]
	if bias == mm.Out {
		bias = add.Inputs[0]
	}
	if _, ok := constData(bias); !ok || bias.Type.Elems() != int64(mm.Out.Type.Shape[1]) || bias.Type.Rank() > 2 ||
		!slices.Equal(add.Out.Type.Shape, mm.Out.Type.Shape) {
		return nil
	}
	gemm, err := g.NewNode(ir.OpGemm, []*ir.Value{x, w, bias}, nil, add.Origin)
	if err != nil {
		return nil
	}
	moveBefore(g, add)
	replaceAllUses(g, add.Out, gemm.Out)
	return gemm
}

// mulBySigmoid rewrites y = mul(x, sigmoid(x)) (either order; the
// sigmoid read by this mul alone, y of x's shape and not a graph output)
// as y = swish(x) with alpha 1, returning the sigmoid that goes.
func mulBySigmoid(g *ir.Graph, mul *ir.Node) *ir.Node {
	if isOutput(g, mul.Out) {
		return nil
	}
	for i, s := range mul.Inputs {
		sig, x := s.Def, mul.Inputs[1-i]
		if sig == nil || sig.Op != ir.OpSigmoid || sig.Inputs[0] != x || uses(g, s) != 1 || isOutput(g, s) ||
			!slices.Equal(mul.Out.Type.Shape, x.Type.Shape) {
			continue
		}
		swish, err := g.NewNode(ir.OpSwish, []*ir.Value{x}, nil, mul.Origin)
		if err != nil {
			return nil
		}
		moveBefore(g, mul)
		replaceAllUses(g, mul.Out, swish.Out)
		return sig
	}
	return nil
}

// uses counts the reads of v by g's nodes (a node reading it twice counts
// twice).
func uses(g *ir.Graph, v *ir.Value) int {
	n := 0
	for _, u := range g.Nodes {
		for _, in := range u.Inputs {
			if in == v {
				n++
			}
		}
	}
	return n
}
