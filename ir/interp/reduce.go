package interp

import (
	"math"

	"cnnc/ir"
)

// evalSoftmax is y = exp(x - max) / sum(exp(x - max)) along one axis, the
// max and the sum taken over that axis, in float64.
func evalSoftmax(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(x.Shape)
	outer, L, inner := sizes(x.Shape, n.Int("axis"))
	e := make([]float64, L)
	for o := range outer {
		for i := range inner {
			at := o*L*inner + i // element k of the line is at at + k*inner
			m := math.Inf(-1)
			for k := range L {
				m = math.Max(m, float64(x.Data[at+k*inner]))
			}
			var sum float64
			for k := range L {
				e[k] = math.Exp(float64(x.Data[at+k*inner]) - m)
				sum += e[k]
			}
			for k := range L {
				out.Data[at+k*inner] = float32(e[k] / sum)
			}
		}
	}
	return out, nil
}

// evalReduceMean is the mean over the listed axes, summed in float64; the
// output keeps them as 1 (keepdims=1) or drops them.
func evalReduceMean(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	reduced := make([]bool, len(x.Shape))
	count := 1
	for _, a := range n.Ints("axes") {
		reduced[a] = true
		count *= x.Shape[a]
	}
	// The output offset of input element i is sum over kept dims of
	// i_d * (row-major stride of d in x with the reduced dims removed).
	st := make([]int, len(x.Shape))
	acc := 1
	for d := len(x.Shape) - 1; d >= 0; d-- {
		if !reduced[d] {
			st[d] = acc
			acc *= x.Shape[d]
		}
	}
	sum := make([]float64, len(out.Data))
	w, s := rowLen(x.Shape), lastStride(st)
	forEachRow(x.Shape, [][]int{st}, func(row int, _, offs []int) {
		for j, v := range x.Data[row*w : row*w+w] {
			sum[offs[0]+j*s] += float64(v)
		}
	})
	for i, v := range sum {
		out.Data[i] = float32(v / float64(count))
	}
	return out, nil
}
