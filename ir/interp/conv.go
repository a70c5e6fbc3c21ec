package interp

import (
	"cnnc/ir"
)

// evalConv2D is y[n,m,oh,ow] = b[m] + sum over c, kh, kw of
// x[n, g*C/group + c, oh*sh - top + kh*dh, ow*sw - left + kw*dw] * w[m,c,kh,kw],
// with g = m / (M/group) the group of output channel m and input outside
// the image reading as zero.
//
// One task computes one output plane (n, m) in a float64 accumulator. For
// every kernel tap and output row it adds weight times input row to the
// accumulator row, the padding handled by the loop bounds (windowRange), so
// the innermost loop is a plain multiply-add along a row. Input channels
// are taken four at a time, which quarters the accumulator traffic.
func evalConv2D(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x, w := in[0], in[1]
	var bias []float32
	if len(in) == 3 {
		bias = in[2].Data
	}
	out := New(n.Out.Type.Shape)
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	M, Cg, KH, KW := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	OH, OW := out.Shape[2], out.Shape[3]
	p, s, d := n.Ints("pads"), n.Ints("strides"), n.Ints("dilations")
	top, left, sh, sw, dh, dw := p[0], p[1], s[0], s[1], d[0], d[1]
	Mg := M / n.Int("group")
	plane, taps := H*W, KH*KW

	acc := newScratch(e.workers)
	e.parallel(N*M, func(worker, task int) {
		b, m := task/M, task%M
		a := acc.get(worker, OH*OW)
		clear(a)
		g := m / Mg
		for c0 := 0; c0 < Cg; c0 += 4 {
			nc := min(4, Cg-c0)
			xc := (b*C + g*Cg + c0) * plane // input channel c0
			wc := (m*Cg + c0) * taps        // its weights
			for kh := range KH {
				ohLo, ohHi := windowRange(OH, sh, kh*dh-top, H)
				for kw := range KW {
					owLo, owHi := windowRange(OW, sw, kw*dw-left, W)
					if owLo >= owHi {
						continue
					}
					var wv [4]float64
					for k := range nc {
						wv[k] = float64(w.Data[wc+k*taps+kh*KW+kw])
					}
					for oh := ohLo; oh < ohHi; oh++ {
						ar := a[oh*OW+owLo : oh*OW+owHi]
						at := xc + (oh*sh+kh*dh-top)*W + owLo*sw + kw*dw - left
						if nc == 4 {
							addRows4(ar, x.Data[at:], x.Data[at+plane:], x.Data[at+2*plane:], x.Data[at+3*plane:], &wv, sw)
							continue
						}
						for k := range nc {
							addRow(ar, x.Data[at+k*plane:], wv[k], sw)
						}
					}
				}
			}
		}
		var bv float64
		if bias != nil {
			bv = float64(bias[m])
		}
		y := out.Data[(b*M+m)*OH*OW:][:OH*OW]
		for i, v := range a {
			y[i] = float32(v + bv)
		}
	})
	return out, nil
}

// addRow is acc[i] += w * x[i*stride] for i in [0, len(acc)).
func addRow(acc []float64, x []float32, w float64, stride int) {
	if stride == 1 {
		x = x[:len(acc)]
		for i := range acc {
			acc[i] += w * float64(x[i])
		}
		return
	}
	for i := range acc {
		acc[i] += w * float64(x[i*stride])
	}
}

// addRows4 is acc[i] += w[0]*x0[i*stride] + w[1]*x1[i*stride] +
// w[2]*x2[i*stride] + w[3]*x3[i*stride].
func addRows4(acc []float64, x0, x1, x2, x3 []float32, w *[4]float64, stride int) {
	w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
	if stride == 1 {
		n := len(acc)
		x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
		for i := range acc {
			acc[i] += w0*float64(x0[i]) + w1*float64(x1[i]) + w2*float64(x2[i]) + w3*float64(x3[i])
		}
		return
	}
	for i := range acc {
		j := i * stride
		acc[i] += w0*float64(x0[j]) + w1*float64(x1[j]) + w2*float64(x2[j]) + w3*float64(x3[j])
	}
}
