package interp

import (
	"cnnc/ir"
)

// evalUnary applies the op table's y = f(x) to every element.
func evalUnary(n *ir.Node, x *Tensor) *Tensor {
	f := n.Op.Unary
	out := New(n.Out.Type.Shape)
	for i, v := range x.Data {
		out.Data[i] = float32(f(float64(v), n))
	}
	return out
}

// evalBinary applies the op table's y = f(a, b) with numpy broadcasting of
// a and b to the output shape.
func evalBinary(n *ir.Node, a, b *Tensor) *Tensor {
	f := n.Op.Binary
	out := New(n.Out.Type.Shape)
	sa, sb := broadcastStrides(a.Shape, out.Shape), broadcastStrides(b.Shape, out.Shape)
	w, ia, ib := rowLen(out.Shape), lastStride(sa), lastStride(sb)
	forEachRow(out.Shape, [][]int{sa, sb}, func(row int, _, offs []int) {
		y := out.Data[row*w : row*w+w]
		pa, pb := offs[0], offs[1]
		for j := range y {
			y[j] = float32(f(float64(a.Data[pa+j*ia]), float64(b.Data[pb+j*ib])))
		}
	})
	return out
}
