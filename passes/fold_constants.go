package passes

import (
	"fmt"

	"cnnc/ir"
	"cnnc/ir/interp"
)

// maxFoldElems bounds the constants fold-constants creates (64 Mi elements).
const maxFoldElems = 1 << 26

// FoldConstants evaluates, with the reference interpreter, every node whose
// inputs are all constants (weights reshaped, transposed or scaled at run
// time) and replaces it by a constant.
//
// Before: a verified graph. After: no non-const node has only constant
// inputs (up to the size limit); outputs are unchanged.
func FoldConstants(g *ir.Graph, _ *Context) error {
	for i := 0; i < len(g.Nodes); i++ {
		n := g.Nodes[i]
		if n.Op == ir.OpConst || len(n.Inputs) == 0 || n.Out.Type.Elems() > maxFoldElems || !n.Out.Type.DType.IsFloat() {
			continue
		}
		allConst := true
		for _, in := range n.Inputs {
			if _, ok := constData(in); !ok {
				allConst = false
			}
		}
		if !allConst {
			continue
		}
		t, err := evalNode(n)
		if err != nil {
			return fmt.Errorf("%s: %v", n.Describe(), err)
		}
		v := constBefore(g, n, t, blobName("folded_"+n.Out.Name, int(t.Elems())))
		replaceAllUses(g, n.Out, v)
		i++ // n moved one place down
	}
	return DeadCode(g, nil)
}

// evalNode runs one node whose inputs are constants.
func evalNode(n *ir.Node) (*ir.Tensor, error) {
	sub := ir.NewGraph("fold")
	ins := make([]*ir.Value, len(n.Inputs))
	for i, in := range n.Inputs {
		ins[i] = sub.NewConst(in.Def.Const, in.Def.Blob, "").Out
	}
	m, err := sub.NewNode(n.Op, ins, n.Attrs, n.Origin)
	if err != nil {
		return nil, err
	}
	sub.Outputs = []*ir.Value{m.Out}
	out, err := interp.Run(sub, nil)
	if err != nil {
		return nil, err
	}
	return ir.NewF32(out[0].Shape, out[0].Data), nil
}
