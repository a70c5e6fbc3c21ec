package passes

import (
	"slices"

	"cnnc/ir"
)

// Canonicalize gives each idiom one form so that later patterns match:
// reshape of reshape becomes one reshape, reshapes and transposes that
// change nothing disappear, and a 2-D MatMul by a constant followed by the
// addition of a constant bias row becomes a Gemm.
//
// Before: a verified graph. After: the same function; no reshape reads a
// reshape, no reshape or transpose is the identity.
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
