package interp

import (
	"math"

	"cnnc/ir"
)

// evalBatchNorm is y = (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] +
// bias[c] with c the index along dim 1, in float64.
func evalBatchNorm(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x, scale, bias, mean, variance := in[0], in[1].Data, in[2].Data, in[3].Data, in[4].Data
	out := New(x.Shape)
	outer, C, inner := sizes(x.Shape, 1)
	eps := n.Float("epsilon")
	for o := range outer {
		for c := range C {
			m, sd := float64(mean[c]), math.Sqrt(float64(variance[c])+eps)
			s, b := float64(scale[c]), float64(bias[c])
			at := (o*C + c) * inner
			y := out.Data[at : at+inner]
			for i, v := range x.Data[at : at+inner] {
				y[i] = float32((float64(v)-m)/sd*s + b)
			}
		}
	}
	return out, nil
}

// evalLayerNorm normalizes each block of x over its dims axis..end to zero
// mean and unit variance (biased variance, epsilon added, statistics in
// float64), then multiplies by scale and adds bias (optional), both
// broadcast to those dims.
func evalLayerNorm(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	ax := n.Int("axis")
	out := New(x.Shape)
	block := x.Shape[ax:]
	size := int(ir.ShapeElems(block))
	if size == 0 {
		return out, nil
	}
	scale := broadcastTo(in[1], block)
	var bias []float32
	if len(in) == 3 {
		bias = broadcastTo(in[2], block)
	}
	eps := n.Float("epsilon")
	for at := 0; at < len(x.Data); at += size {
		xb, y := x.Data[at:at+size], out.Data[at:at+size]
		var sum float64
		for _, v := range xb {
			sum += float64(v)
		}
		mean := sum / float64(size)
		var sq float64
		for _, v := range xb {
			d := float64(v) - mean
			sq += d * d
		}
		sd := math.Sqrt(sq/float64(size) + eps)
		for i, v := range xb {
			r := (float64(v) - mean) / sd * float64(scale[i])
			if bias != nil {
				r += float64(bias[i])
			}
			y[i] = float32(r)
		}
	}
	return out, nil
}

// evalLRN is ONNX LRN across channels (dim 1): y = x / (bias + alpha/size *
// sum of x^2 over channels c - floor((size-1)/2) .. c + ceil((size-1)/2),
// clipped to the tensor)^beta.
func evalLRN(_ *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(x.Shape)
	N, C, inner := sizes(x.Shape, 1)
	size := n.Int("size")
	alpha, beta, bias := n.Float("alpha"), n.Float("beta"), n.Float("bias")
	below, above := (size-1)/2, size/2 // floor and ceil of (size-1)/2
	for b := range N {
		for c := range C {
			lo, hi := max(0, c-below), min(C-1, c+above)
			for p := range inner {
				var sq float64
				for k := lo; k <= hi; k++ {
					v := float64(x.Data[(b*C+k)*inner+p])
					sq += v * v
				}
				at := (b*C+c)*inner + p
				out.Data[at] = float32(float64(x.Data[at]) / math.Pow(bias+alpha/float64(size)*sq, beta))
			}
		}
	}
	return out, nil
}
