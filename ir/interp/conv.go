package interp

import (
	"cnnc/ir"
)

// evalConv2D is y[n,m,oh,ow] = b[m] + sum over c, kh, kw of
// x[n, g*C/group + c, oh*sh - top + kh*dh, ow*sw - left + kw*dw] * w[m,c,kh,kw],
// with g = m / (M/group) the group of output channel m and input outside
// the image reading as zero.
//
// One task computes one output plane (n, m) in a float64 accumulator: for
// every input channel and kernel tap it adds the weight times a row of the
// input to a row of the accumulator, so the innermost loop is a contiguous
// multiply-add (strided by sw) with the padding handled by the loop bounds.
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

	acc := newScratch(e.workers)
	e.parallel(N*M, func(worker, task int) {
		b, m := task/M, task%M
		a := acc.get(worker, OH*OW)
		clear(a)
		g := m / Mg
		c := 0
		// Four input channels at a time share one pass over the
		// accumulator (the stride-1 case), then one at a time.
		for ; c+4 <= Cg && sw == 1; c += 4 {
			base := (b*C + g*Cg + c) * H * W
			for kh := range KH {
				ohLo, ohHi := windowRange(OH, sh, kh*dh-top, H)
				for kw := range KW {
					owLo, owHi := windowRange(OW, sw, kw*dw-left, W)
					if owLo >= owHi {
						continue
					}
					wt := (m*Cg+c)*KH*KW + kh*KW + kw
					w0, w1, w2, w3 := float64(w.Data[wt]), float64(w.Data[wt+KH*KW]), float64(w.Data[wt+2*KH*KW]), float64(w.Data[wt+3*KH*KW])
					for oh := ohLo; oh < ohHi; oh++ {
						at := base + (oh*sh+kh*dh-top)*W + owLo + kw*dw - left
						ar := a[oh*OW+owLo : oh*OW+owHi]
						x0 := x.Data[at:][:len(ar)]
						x1 := x.Data[at+H*W:][:len(ar)]
						x2 := x.Data[at+2*H*W:][:len(ar)]
						x3 := x.Data[at+3*H*W:][:len(ar)]
						for i := range ar {
							ar[i] += w0*float64(x0[i]) + w1*float64(x1[i]) + w2*float64(x2[i]) + w3*float64(x3[i])
						}
					}
				}
			}
		}
		for ; c < Cg; c++ {
			xp := x.Data[(b*C+g*Cg+c)*H*W:][:H*W]
			wk := w.Data[(m*Cg+c)*KH*KW:][:KH*KW]
			for kh := range KH {
				ohLo, ohHi := windowRange(OH, sh, kh*dh-top, H)
				for kw := range KW {
					owLo, owHi := windowRange(OW, sw, kw*dw-left, W)
					if owLo >= owHi {
						continue
					}
					wv := float64(wk[kh*KW+kw])
					for oh := ohLo; oh < ohHi; oh++ {
						ih := oh*sh + kh*dh - top
						iw := owLo*sw + kw*dw - left
						ar := a[oh*OW+owLo : oh*OW+owHi]
						xr := xp[ih*W+iw:]
						if sw == 1 {
							xr = xr[:len(ar)]
							for i := range ar {
								ar[i] += wv * float64(xr[i])
							}
						} else {
							for i := range ar {
								ar[i] += wv * float64(xr[i*sw])
							}
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
