package codegen

import (
	"fmt"

	"github.com/llir/llvm/ir/value"

	"cnnc/ir"
)

// emitConv lowers conv2d: depthwise convolutions (one input channel per
// group) get a direct kernel, everything else the implicit GEMM.
func emitConv(c *nodeKernel) (launchShape, error) {
	w := c.n.Inputs[1].Type.Shape
	if w[1] == 1 && c.n.Int("group") > 1 {
		return emitDepthwise(c), nil
	}
	return emitImplicitGemmConv(c), nil
}

// convGeometry holds a conv2d's sizes.
type convGeometry struct {
	N, C, H, W             int // input
	M, Ho, Wo              int // output channels and size
	KH, KW                 int
	SH, SW, DH, DW, PT, PL int
	G, Cg, Mg              int // groups, input and output channels per group
}

func convGeom(n *ir.Node) convGeometry {
	x, w, y := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape, n.Out.Type.Shape
	s, d, p := n.Ints("strides"), n.Ints("dilations"), n.Ints("pads")
	g := n.Int("group")
	return convGeometry{N: x[0], C: x[1], H: x[2], W: x[3], M: y[1], Ho: y[2], Wo: y[3],
		KH: w[2], KW: w[3], SH: s[0], SW: s[1], DH: d[0], DW: d[1], PT: p[0], PL: p[1],
		G: g, Cg: x[1] / g, Mg: y[1] / g}
}

// inputTap returns x[nb][ch][oh*s-p+r*d][ow*s-p+q*d] and whether it lies
// inside the input (zero padding elsewhere).
func (g convGeometry) inputTap(k *kernel, x, nb, ch, oh, ow, r, q, ok value.Value) value.Value {
	ih := k.add(k.sub(k.mul(oh, ci(g.SH)), ci(g.PT)), k.mul(r, ci(g.DH)))
	iw := k.add(k.sub(k.mul(ow, ci(g.SW)), ci(g.PL)), k.mul(q, ci(g.DW)))
	ok = k.and(ok, k.inRange(ih, g.H), k.inRange(iw, g.W))
	idx := k.add(k.mul(k.add(k.mul(k.add(k.mul(nb, ci(g.C)), ch), ci(g.H)), ih), ci(g.W)), iw)
	return k.loadGuarded(x, idx, ok, 0)
}

// emitImplicitGemmConv computes the convolution as a GEMM without
// materializing im2col: per group z, C[m][p] = sum_k W[z*Mg+m][k] * X'[k][p]
// with k = (c, r, q) over the window and p = (n, oh, ow) over the output.
func emitImplicitGemmConv(c *nodeKernel) launchShape {
	g := convGeom(c.n)
	x, wt, y := c.in[0], c.in[1], c.out
	K := g.Cg * g.KH * g.KW
	hw := g.Ho * g.Wo
	p := gemmProblem{M: g.Mg, N: g.N * hw, K: K, Batch: g.G,
		loadA: func(k *kernel, z, m, kk, ok value.Value) value.Value {
			return k.loadGuarded(wt, k.add(k.mul(k.madd(z, g.Mg, m), ci(K)), kk), ok, 0)
		},
		loadB: func(k *kernel, z, kk, pix, ok value.Value) value.Value {
			ch := k.madd(z, g.Cg, k.div(kk, g.KH*g.KW))
			r, q := k.rem(k.div(kk, g.KW), g.KH), k.rem(kk, g.KW)
			nb, rest := k.div(pix, hw), k.rem(pix, hw)
			return g.inputTap(k, x, nb, ch, k.div(rest, g.Wo), k.rem(rest, g.Wo), r, q, ok)
		},
		store: func(k *kernel, z, m, pix, acc value.Value) {
			oc := k.madd(z, g.Mg, m)
			if len(c.in) > 2 {
				acc = k.fadd(acc, k.loadAt(c.in[2], oc))
			}
			nb, rest := k.div(pix, hw), k.rem(pix, hw)
			k.store(acc, k.at(y, k.add(k.mul(k.madd(nb, g.M, oc), ci(hw)), rest)))
		},
	}
	c.describe(fmt.Sprintf("conv%dx%d", g.KH, g.KW))
	return emitGemm(c.k, p, defaultTile)
}

// emitDepthwise is one thread per output element summing its KHxKW window
// (fully unrolled: windows are small).
func emitDepthwise(c *nodeKernel) launchShape {
	g := convGeom(c.n)
	k := c.k
	total := g.N * g.M * g.Ho * g.Wo
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	co := k.coords(i, []int{g.N, g.M, g.Ho, g.Wo})
	nb, oc, oh, ow := co[0], co[1], co[2], co[3]
	ch := k.div(oc, g.Mg)
	var acc value.Value = cf(0)
	if len(c.in) > 2 {
		acc = k.loadAt(c.in[2], oc)
	}
	for r := 0; r < g.KH; r++ {
		for q := 0; q < g.KW; q++ {
			wv := k.loadAt(c.in[1], k.madd(oc, g.KH*g.KW, ci(r*g.KW+q)))
			xv := g.inputTap(k, c.in[0], nb, ch, oh, ow, ci(r), ci(q), ci(1))
			acc = k.fma(wv, xv, acc)
		}
	}
	k.store(acc, k.at(c.out, i))
	c.describe(fmt.Sprintf("dwconv%dx%d", g.KH, g.KW))
	return mapShape(total, k.threads)
}

// emitGemmOp lowers gemm: y = alpha * op(A) op(B) + beta * C.
func emitGemmOp(c *nodeKernel) (launchShape, error) {
	n := c.n
	a, b := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape
	ta, tb := n.Int("trans_a") != 0, n.Int("trans_b") != 0
	M, N := n.Out.Type.Shape[0], n.Out.Type.Shape[1]
	K := a[1]
	if ta {
		K = a[0]
	}
	alpha, beta := n.Float("alpha"), n.Float("beta")
	p := gemmProblem{M: M, N: N, K: K, Batch: 1,
		loadA: func(k *kernel, _, m, kk, ok value.Value) value.Value {
			if ta {
				return k.loadGuarded(c.in[0], k.madd(kk, M, m), ok, 0)
			}
			return k.loadGuarded(c.in[0], k.madd(m, K, kk), ok, 0)
		},
		loadB: func(k *kernel, _, kk, col, ok value.Value) value.Value {
			if tb {
				return k.loadGuarded(c.in[1], k.madd(col, b[1], kk), ok, 0)
			}
			return k.loadGuarded(c.in[1], k.madd(kk, N, col), ok, 0)
		},
		store: func(k *kernel, _, m, col, acc value.Value) {
			if alpha != 1 {
				acc = k.fmul(acc, cf(alpha))
			}
			if len(c.in) > 2 && beta != 0 {
				cv := k.loadAt(c.in[2], broadcastIndex(k, []value.Value{m, col}, []int{M, N}, n.Inputs[2].Type.Shape))
				acc = k.fma(cv, cf(beta), acc)
			}
			k.store(acc, k.at(c.out, k.madd(m, N, col)))
		},
	}
	c.describe("gemm")
	return emitGemm(c.k, p, defaultTile), nil
}

// emitMatMul lowers N-D matmul with broadcast batch dims, one GEMM per
// batch index (grid z).
func emitMatMul(c *nodeKernel) (launchShape, error) {
	as, bs := c.n.Inputs[0].Type.Shape, c.n.Inputs[1].Type.Shape
	batch, M, K, N, err := ir.MatMulDims(as, bs)
	if err != nil {
		return launchShape{}, err
	}
	nb := int(ir.ShapeElems(batch))
	batchOffset := func(k *kernel, z value.Value, shape []int, mat int) value.Value {
		if len(shape) <= 2 {
			return ci(0)
		}
		own := shape[:len(shape)-2]
		return k.mul(broadcastIndex(k, k.coords(z, batch), batch, own), ci(mat))
	}
	p := gemmProblem{M: M, N: N, K: K, Batch: nb,
		loadA: func(k *kernel, z, m, kk, ok value.Value) value.Value {
			return k.loadGuarded(c.in[0], k.add(batchOffset(k, z, as, M*K), k.madd(m, K, kk)), ok, 0)
		},
		loadB: func(k *kernel, z, kk, col, ok value.Value) value.Value {
			return k.loadGuarded(c.in[1], k.add(batchOffset(k, z, bs, K*N), k.madd(kk, N, col)), ok, 0)
		},
		store: func(k *kernel, z, m, col, acc value.Value) {
			k.store(acc, k.at(c.out, k.add(k.mul(z, ci(M*N)), k.madd(m, N, col))))
		},
	}
	c.describe("matmul")
	return emitGemm(c.k, p, defaultTile), nil
}

// broadcastIndex maps output coordinates (of outShape) to the linear index
// of an operand of shape that broadcasts to it (right-aligned, size-1 dims
// repeat).
func broadcastIndex(k *kernel, coords []value.Value, outShape, shape []int) value.Value {
	strides := ir.Strides(shape)
	off := len(outShape) - len(shape)
	var idx value.Value = ci(0)
	for d, s := range shape {
		if s != 1 {
			idx = k.add(idx, k.mul(coords[d+off], ci(strides[d])))
		}
	}
	return idx
}
