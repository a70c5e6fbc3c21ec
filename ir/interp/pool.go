package interp

import (
	"math"

	"cnnc/ir"
)

// poolGeometry is the window of a maxpool2d or avgpool2d node. The output
// size is the node's output type (the shape rule already applied
// ceil_mode); a window tap (kh, kw) of output (oh, ow) reads input row
// oh*sh - top + kh*dh and column ow*sw - left + kw*dw.
type poolGeometry struct {
	H, W, OH, OW             int
	KH, KW, sh, sw, dh, dw   int
	top, left, bottom, right int
}

func newPoolGeometry(n *ir.Node, x *Tensor) poolGeometry {
	k, p, s, d := n.Ints("kernel"), n.Ints("pads"), n.Ints("strides"), n.Ints("dilations")
	o := n.Out.Type.Shape
	return poolGeometry{
		H: x.Shape[2], W: x.Shape[3], OH: o[2], OW: o[3],
		KH: k[0], KW: k[1], sh: s[0], sw: s[1], dh: d[0], dw: d[1],
		top: p[0], left: p[1], bottom: p[2], right: p[3],
	}
}

// forEachPlane runs plane(x, y) over the N*C planes of x and out.
func forEachPlane(e *evaluator, x, out *Tensor, plane func(x, y []float32)) {
	in, on := x.Shape[2]*x.Shape[3], out.Shape[2]*out.Shape[3]
	e.parallel(x.Shape[0]*x.Shape[1], func(_, i int) {
		plane(x.Data[i*in:][:in], out.Data[i*on:][:on])
	})
}

// evalMaxPool is the maximum over each window's real input elements;
// padding never wins. A NaN in a window makes the result NaN, and a window
// that covers no input at all gives -inf.
func evalMaxPool(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	pg := newPoolGeometry(n, x)
	forEachPlane(e, x, out, func(xp, yp []float32) {
		for oh := range pg.OH {
			khLo, khHi := windowRange(pg.KH, pg.dh, oh*pg.sh-pg.top, pg.H)
			for ow := range pg.OW {
				kwLo, kwHi := windowRange(pg.KW, pg.dw, ow*pg.sw-pg.left, pg.W)
				m := float32(math.Inf(-1))
				for kh := khLo; kh < khHi; kh++ {
					row := (oh*pg.sh - pg.top + kh*pg.dh) * pg.W
					for kw := kwLo; kw < kwHi; kw++ {
						v := xp[row+ow*pg.sw-pg.left+kw*pg.dw]
						if v > m || v != v {
							m = v
						}
						if m != m {
							break
						}
					}
				}
				yp[oh*pg.OW+ow] = m
			}
		}
	})
	return out, nil
}

// evalAvgPool is the mean over each window, summed in float64. The divisor
// counts the window taps that land on real input (count_include_pad=0) or
// on the explicitly padded input, pads included (count_include_pad=1);
// taps past the right and bottom pads, which ceil_mode can add, are never
// counted. A window with nothing to count gives 0.
func evalAvgPool(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	pg := newPoolGeometry(n, x)
	includePad := n.Int("count_include_pad") != 0
	forEachPlane(e, x, out, func(xp, yp []float32) {
		for oh := range pg.OH {
			ih0 := oh*pg.sh - pg.top
			khLo, khHi := windowRange(pg.KH, pg.dh, ih0, pg.H)
			for ow := range pg.OW {
				iw0 := ow*pg.sw - pg.left
				kwLo, kwHi := windowRange(pg.KW, pg.dw, iw0, pg.W)
				var sum float64
				for kh := khLo; kh < khHi; kh++ {
					row := (ih0 + kh*pg.dh) * pg.W
					for kw := kwLo; kw < kwHi; kw++ {
						sum += float64(xp[row+iw0+kw*pg.dw])
					}
				}
				count := (khHi - khLo) * (kwHi - kwLo)
				if includePad {
					// Taps inside [-top, H+bottom) x [-left, W+right).
					hLo, hHi := windowRange(pg.KH, pg.dh, ih0+pg.top, pg.H+pg.top+pg.bottom)
					wLo, wHi := windowRange(pg.KW, pg.dw, iw0+pg.left, pg.W+pg.left+pg.right)
					count = (hHi - hLo) * (wHi - wLo)
				}
				if count > 0 {
					yp[oh*pg.OW+ow] = float32(sum / float64(count))
				}
			}
		}
	})
	return out, nil
}

// evalGlobalAvgPool is the mean over all dims after the first two.
func evalGlobalAvgPool(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	size := int(ir.ShapeElems(x.Shape[2:]))
	for i := range out.Data {
		var sum float64
		for _, v := range x.Data[i*size : (i+1)*size] {
			sum += float64(v)
		}
		out.Data[i] = float32(sum / float64(size))
	}
	return out, nil
}

// evalGlobalMaxPool is the maximum over all dims after the first two; NaN
// wins.
func evalGlobalMaxPool(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	x := in[0]
	out := New(n.Out.Type.Shape)
	size := int(ir.ShapeElems(x.Shape[2:]))
	for i := range out.Data {
		m := float32(math.Inf(-1))
		for _, v := range x.Data[i*size : (i+1)*size] {
			if v > m || v != v {
				m = v
				if m != m {
					break
				}
			}
		}
		out.Data[i] = m
	}
	return out, nil
}
