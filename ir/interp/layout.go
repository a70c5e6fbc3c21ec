package interp

import (
	"slices"

	"cnnc/ir"
)

// evalReshape keeps the elements in row-major order under the new shape.
// The data is copied so that no two values share storage.
func evalReshape(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	return &Tensor{Shape: slices.Clone(n.Out.Type.Shape), Data: slices.Clone(in[0].Data)}, nil
}

// evalTranspose is y[i_0, ..., i_r-1] = x[j] with j_perm[k] = i_k: output
// dim k walks input dim perm[k].
func evalTranspose(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	xs := ir.Strides(x.Shape)
	st := make([]int, len(out.Shape))
	for k, p := range n.Ints("perm") {
		st[k] = xs[p]
	}
	gather(out.Data, out.Shape, x.Data, 0, st)
	return out, nil
}

// evalConcat joins the inputs along axis, in input order.
func evalConcat(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	ax := n.Int("axis")
	out := New(n.Out.Type.Shape)
	outer, _, inner := sizes(out.Shape, ax)
	at := 0
	for o := range outer {
		for _, t := range in {
			chunk := t.Shape[ax] * inner
			at += copy(out.Data[at:], t.Data[o*chunk:(o+1)*chunk])
		}
	}
	return out, nil
}

// evalSlice takes, along each dim d, the elements starts[d] + i*steps[d]
// for i in [0, SliceLen(starts[d], ends[d], steps[d])). The attributes are
// already normalized and clamped (the shape rule checks it).
func evalSlice(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	starts, steps := n.Ints("starts"), n.Ints("steps")
	xs := ir.Strides(x.Shape)
	base := 0
	st := make([]int, len(xs))
	for d := range xs {
		base += starts[d] * xs[d]
		st[d] = steps[d] * xs[d]
	}
	if len(out.Data) > 0 {
		gather(out.Data, out.Shape, x.Data, base, st)
	}
	return out, nil
}

// evalPad places x at offset begin_d in each dim of an output filled with
// value; pads are [begin_0..begin_r-1, end_0..end_r-1] and a negative pad
// crops.
func evalPad(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	pads, value := n.Ints("pads"), float32(n.Float("value"))
	r := len(x.Shape)
	if r == 0 {
		copy(out.Data, x.Data)
		return out, nil
	}
	xs := ir.Strides(x.Shape)
	w, xw, begin := rowLen(out.Shape), x.Shape[r-1], pads[r-1]
	forEachRow(out.Shape, nil, func(row int, idx, _ []int) {
		y := out.Data[row*w : row*w+w]
		at := 0 // offset of the input row, if this output row has one
		for d, i := range idx {
			src := i - pads[d]
			if src < 0 || src >= x.Shape[d] {
				for j := range y {
					y[j] = value
				}
				return
			}
			at += src * xs[d]
		}
		for j := range y {
			if src := j - begin; src >= 0 && src < xw {
				y[j] = x.Data[at+src]
			} else {
				y[j] = value
			}
		}
	})
	return out, nil
}
