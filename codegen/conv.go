package codegen

import (
	"fmt"
	"slices"

	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// convGeometry holds a conv2d's sizes.
type convGeometry struct {
	N, C, H, W             int // input
	M, Ho, Wo              int // output channels and size
	KH, KW                 int
	SH, SW, DH, DW, PT, PL int
	G, Cg, Mg              int // groups, input and output channels per group
	// InNHWC and OutNHWC say the input or output is stored channels last.
	InNHWC, OutNHWC bool
}

func convGeom(n *ir.Node) convGeometry {
	x, w, y := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape, n.Out.Type.Shape
	s, d, p := n.Ints("strides"), n.Ints("dilations"), n.Ints("pads")
	g := n.Int("group")
	return convGeometry{N: x[0], C: x[1], H: x[2], W: x[3], M: y[1], Ho: y[2], Wo: y[3],
		KH: w[2], KW: w[3], SH: s[0], SW: s[1], DH: d[0], DW: d[1], PT: p[0], PL: p[1],
		G: g, Cg: x[1] / g, Mg: y[1] / g, InNHWC: nhwc(n.Inputs[0]), OutNHWC: nhwc(n.Out)}
}

// inputTap returns x[nb][ch][oh*s-p+r*d][ow*s-p+q*d] and whether it lies
// inside the input (zero padding elsewhere).
func (g convGeometry) inputTap(k *kernel, x, nb, ch, oh, ow, r, q, ok value.Value) value.Value {
	ih := k.add(k.sub(k.mul(oh, ci(g.SH)), ci(g.PT)), k.mul(r, ci(g.DH)))
	iw := k.add(k.sub(k.mul(ow, ci(g.SW)), ci(g.PL)), k.mul(q, ci(g.DW)))
	ok = k.and(ok, k.inRange(ih, g.H), k.inRange(iw, g.W))
	idx := k.add(k.mul(k.add(k.mul(k.add(k.mul(nb, ci(g.C)), ch), ci(g.H)), ih), ci(g.W)), iw)
	if g.InNHWC {
		idx = k.add(k.mul(k.add(k.mul(k.add(k.mul(nb, ci(g.H)), ih), ci(g.W)), iw), ci(g.C)), ch)
	}
	return k.loadGuarded(x, idx, ok, 0)
}

// gemmProblemOf is the GEMM a GEMM-core anchor computes, with the
// kernel's prologue feeding its operand and its epilogue in the store.
func gemmProblemOf(c *nodeKernel) (gemmProblem, string, error) {
	switch c.n.Op {
	case ir.OpConv2D:
		p, err := convProblem(c)
		desc := fmt.Sprintf("conv%dx%d", c.n.Inputs[1].Type.Shape[2], c.n.Inputs[1].Type.Shape[3])
		if c.partner != nil {
			desc += fmt.Sprintf("_%dx%d", c.partner.Inputs[1].Type.Shape[2], c.partner.Inputs[1].Type.Shape[3])
		}
		return p, desc, err
	case ir.OpGemm:
		return gemmOpProblem(c), "gemm", nil
	case ir.OpMatMul:
		p, err := matmulProblem(c)
		return p, "matmul", err
	}
	return gemmProblem{}, "", fmt.Errorf("%s is not a GEMM-core op", c.n.Op.Name)
}

// convProblem is the kernel's convolution as a GEMM; with a partner
// (fuse-shortcut-conv), the two side by side along K, the one whose K is
// a whole number of the tile's slices first (the anchor's if neither),
// stored through the anchor's store with the partner's bias added.
func convProblem(c *nodeKernel) (gemmProblem, error) {
	if c.partner == nil {
		return convProblemOf(c, c.n, c.in, nil), nil
	}
	if !unpadded1x1(c.n) || !unpadded1x1(c.partner) || c.prologueAnchor() != nil {
		return gemmProblem{}, fmt.Errorf("%w: %s summed into %s's GEMM: both must be unpadded ungrouped 1x1 convolutions without a prologue",
			ErrUnsupported, c.partner.Describe(), c.n.Describe())
	}
	if e := c.epilogue; len(e) == 0 || e[0].Op != ir.OpAdd || !slices.Contains(e[0].Inputs, c.n.Out) || !slices.Contains(e[0].Inputs, c.partner.Out) {
		return gemmProblem{}, fmt.Errorf("%w: %s is summed into %s's GEMM, but the epilogue does not start by adding the two",
			ErrUnsupported, c.partner.Describe(), c.n.Describe())
	}
	var in []value.Value
	for _, v := range c.partner.Inputs {
		in = append(in, c.params[v])
	}
	var bias value.Value
	if len(in) > 2 {
		bias = in[2]
	}
	p, q := convProblemOf(c, c.n, c.in, bias), convProblemOf(c, c.partner, in, nil)
	bk := costmodel.TileFromInts(c.n.Sched.Tile).BK
	if p.K%bk == 0 || q.K%bk != 0 {
		return concatK(p, q, p.K%bk == 0)
	}
	// The partner's K first, so that a slice lies in one side or the other.
	r, err := concatK(q, p, true)
	r.store, r.store8, r.prefetch8, r.col8 = p.store, p.store8, p.prefetch8, p.col8
	return r, err
}

// convProblemOf is convolution n (the kernel's anchor or its partner,
// reading params in) as a GEMM without materializing im2col: per group z,
// C[m][p] = sum_k W[z*Mg+m][k] * X'[k][p] with k = (c, r, q) over the
// window and p = (n, oh, ow) over the output. A depthwise prologue
// computes X' itself. The store adds extraBias, where given, to the
// bias.
func convProblemOf(c *nodeKernel, n *ir.Node, in []value.Value, extraBias value.Value) gemmProblem {
	g := convGeom(n)
	wt, y := in[1], c.out
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
			return g.inputTap(k, in[0], nb, ch, k.div(rest, g.Wo), k.rem(rest, g.Wo), r, q, ok)
		},
		store: func(k *kernel, z, m, pix, acc value.Value) {
			oc := k.madd(z, g.Mg, m)
			for _, b := range biases(in, extraBias) {
				acc = k.fadd(acc, k.loadAt(b, oc))
			}
			coords := func() []value.Value {
				nb, rest := k.div(pix, hw), k.rem(pix, hw)
				return []value.Value{nb, oc, k.div(rest, g.Wo), k.rem(rest, g.Wo)}
			}
			var at value.Value
			if g.OutNHWC {
				at = k.madd(pix, g.M, oc) // pixel-major, channels last
			} else {
				nb, rest := k.div(pix, hw), k.rem(pix, hw)
				at = k.add(k.mul(k.madd(nb, g.M, oc), ci(hw)), rest)
			}
			k.store(c.applyEpilogue(k, acc, coords, at), k.at(y, at))
		},
	}
	if dw := c.prologueAnchor(); dw != nil {
		// 1x1 conv reading a depthwise conv: X'[ch][pix] is the depthwise
		// output at (nb, ch, oh, ow), its epilogue applied.
		p.loadB = func(k *kernel, _, kk, pix, ok value.Value) value.Value {
			ch, pix := k.sel(ok, kk, ci(0)), k.sel(ok, pix, ci(0))
			nb, rest := k.div(pix, hw), k.rem(pix, hw)
			co := []value.Value{nb, ch, k.div(rest, g.Wo), k.rem(rest, g.Wo)}
			v := c.depthwiseAt(k, dw, co)
			return k.sel(ok, v, cf(0))
		}
	}
	// fp16 weights with K in eights: the tensor-core core stages them
	// eight per 128-bit load (rows of W are k-contiguous).
	vecW := elemOf(wt) == types.Half && K%8 == 0
	if vecW {
		p.srcA8 = func(k *kernel, z, m value.Value, kk kIndex, ok value.Value) half8Src {
			return half8Src{base: wt, idx: k.add(k.mul(k.madd(z, g.Mg, m), ci(K)), kk.abs(k)), ok: ok}
		}
	}
	if g.OutNHWC && g.G == 1 {
		q := channelsLastProblem(p, g)
		if ohwiWeights(n) {
			// W'[k][oc] with k in (r, q, c) order is the transposed copy's
			// row oc (see ohwiWeights): read in place, contiguous in k.
			q.loadB = func(k *kernel, _, kk, oc, ok value.Value) value.Value {
				return k.loadGuarded(wt, k.madd(oc, K, kk), ok, 0)
			}
			q.BKContig = true
		}
		if vecW {
			// k in W's own order: (c, r, q), or (r, q, c) in the OHWI copy.
			q.srcB8 = func(k *kernel, z value.Value, kk kIndex, oc, ok value.Value) half8Src {
				return p.srcA8(k, z, oc, kk, ok)
			}
		}
		if g.M%8 == 0 && elemOf(y) == types.Half {
			// Eight consecutive channels of one pixel: 128 bits of output.
			q.prefetch8 = c.laneOperands()
			for _, b := range biases(in, extraBias) {
				if elemOf(b) == types.Half {
					q.col8 = append(q.col8, b)
				}
			}
			q.store8 = func(k *kernel, _, pix, oc value.Value, acc []value.Value, pre map[value.Value]value.Value) {
				at := k.madd(pix, g.M, oc)
				for _, b := range biases(in, extraBias) {
					var bias []value.Value
					if w, ok := pre[b]; ok {
						bias = k.floats8(w)
					} else {
						bias = k.load8(b, oc)
					}
					for j := range acc {
						acc[j] = k.fadd(acc[j], bias[j])
					}
				}
				c.storeEpilogue8(k, acc, at, func(j int) []value.Value {
					nb, rest := k.div(pix, hw), k.rem(pix, hw)
					return []value.Value{nb, k.add(oc, ci(j)), k.div(rest, g.Wo), k.rem(rest, g.Wo)}
				}, pre)
			}
		}
		if x := in[0]; vecW && g.InNHWC && (ohwiWeights(n) || g.KH*g.KW == 1) && tmaConvOK(g) && c.prologueAnchor() == nil && elemOf(x) == types.Half {
			// Both operands through the copy engine where the tile allows
			// (see emitGemmTC): the im2col of the input, and the weights'
			// rows (W'[oc][k], K contiguous) as a 2-D box.
			if unpadded1x1(c.n) && g.SH == 1 && g.SW == 1 {
				// A is the input itself, [pixels][C]: a tiled box
				// (im2col boxes measured slower on such GEMMs).
				q.tmaA = tmaTiled(x, g.N*g.H*g.W, g.C, g.C)
			} else {
				q.tmaA = tmaIm2col(x, g)
			}
			q.tmaB = tmaTiled(wt, g.M, K, K)
		}
		if x := in[0]; g.InNHWC && g.C%8 == 0 && c.prologueAnchor() == nil && elemOf(x) == types.Half {
			// A K slice within one tap (C a multiple of BK) finds the tap
			// once per slice, the same for every thread.
			sameTap := g.C%costmodel.TileFromInts(c.n.Sched.Tile).BK == 0
			q.srcA8 = func(k *kernel, _, pix value.Value, kk kIndex, ok value.Value) half8Src {
				// Eight channels of one tap: k runs (r, q, c), c fastest.
				ch, rq := k.rem(kk.abs(k), g.C), k.div(kk.abs(k), g.C)
				if sameTap {
					rq, ch = k.div(kk.slice, g.C), k.add(k.rem(kk.slice, g.C), kk.off)
				}
				r, q := k.div(rq, g.KW), k.rem(rq, g.KW)
				// What depends on the pixel alone (the same in every slice):
				// its top-left tap and that tap's index.
				nb, rest := k.div(pix, hw), k.rem(pix, hw)
				ih0 := k.sub(k.mul(k.div(rest, g.Wo), ci(g.SH)), ci(g.PT))
				iw0 := k.sub(k.mul(k.rem(rest, g.Wo), ci(g.SW)), ci(g.PL))
				at0 := k.mul(k.add(k.mul(k.add(k.mul(nb, ci(g.H)), ih0), ci(g.W)), iw0), ci(g.C))
				// ok folded into the top row (far above the input where it
				// fails): each piece checks only its row and column.
				ih0 = k.sel(ok, ih0, ci(-1<<24))
				dh, dw := k.mul(r, ci(g.DH)), k.mul(q, ci(g.DW))
				ok = k.and(k.inRange(k.add(ih0, dh), g.H), k.inRange(k.add(iw0, dw), g.W))
				idx := k.add(at0, k.add(k.mul(k.madd(dh, g.W, dw), ci(g.C)), ch))
				return half8Src{base: x, idx: idx, ok: ok, reread: g.KH*g.KW > 1}
			}
		}
		return q
	}
	return p
}

// tmaConvOK says the copy engine can walk g's im2col: channels in 64s
// (a slice within one tap), dilation 1, strides of at most 8 and
// corners within the driver's [-128, 128) for a 4-D map (see tmaIm2col).
func tmaConvOK(g convGeometry) bool {
	lower, upper := tmaCorners(g)
	for _, v := range append(lower, upper...) {
		if v < -128 || v >= 128 {
			return false
		}
	}
	return g.C%64 == 0 && g.DH == 1 && g.DW == 1 && g.SH <= 8 && g.SW <= 8
}

// unpadded1x1 is an ungrouped 1x1 convolution without padding (any
// stride): its weights need no reordering and its K is its channels.
func unpadded1x1(n *ir.Node) bool {
	w := n.Inputs[1].Type.Shape
	return n.Op == ir.OpConv2D && n.Int("group") == 1 && w[2] == 1 && w[3] == 1 &&
		!slices.ContainsFunc(n.Ints("pads"), func(p int) bool { return p != 0 })
}

// biases are a convolution's bias param, if it has one, and extra, if
// given.
func biases(in []value.Value, extra value.Value) []value.Value {
	var out []value.Value
	if len(in) > 2 {
		out = append(out, in[2])
	}
	if extra != nil {
		out = append(out, extra)
	}
	return out
}

// concatK is the GEMM of p and q side by side along K, p's K first:
// C = [A_p A_q] [B_p; B_q], stored through p's store. Each element reads
// from one side or the other; with sliceAligned (p's K a multiple of the
// tile's BK) a K slice lies in one side, and the 128-bit sources choose
// once per slice.
func concatK(p, q gemmProblem, sliceAligned bool) (gemmProblem, error) {
	if p.M != q.M || p.N != q.N || p.Batch != q.Batch || p.AMContig != q.AMContig || p.BKContig != q.BKContig {
		return gemmProblem{}, fmt.Errorf("%w: convolutions summed along K with different GEMMs (%dx%dx%d, %dx%dx%d)",
			ErrUnsupported, p.M, p.N, p.Batch, q.M, q.N, q.Batch)
	}
	r := p
	r.K = p.K + q.K
	first := func(k *kernel, kk value.Value) value.Value { return k.lt(kk, ci(p.K)) }
	second := func(k *kernel, kk value.Value) value.Value { return k.sub(kk, ci(p.K)) }
	r.loadA = func(k *kernel, z, m, kk, ok value.Value) value.Value {
		f, s := first(k, kk), k.ge(kk, ci(p.K))
		return k.sel(f, p.loadA(k, z, m, kk, k.and(ok, f)), q.loadA(k, z, m, second(k, kk), k.and(ok, s)))
	}
	r.loadB = func(k *kernel, z, kk, n, ok value.Value) value.Value {
		f, s := first(k, kk), k.ge(kk, ci(p.K))
		return k.sel(f, p.loadB(k, z, kk, n, k.and(ok, f)), q.loadB(k, z, second(k, kk), n, k.and(ok, s)))
	}
	r.srcA8, r.srcB8, r.tmaA, r.tmaB = nil, nil, nil, nil
	if !sliceAligned {
		return r, nil
	}
	if p.tmaA != nil && p.tmaB != nil && q.tmaA != nil && q.tmaB != nil && p.K%(tmaRowBytes/2) == 0 {
		r.tmaA, r.tmaB = tmaConcatK(p.tmaA, q.tmaA, p.K), tmaConcatK(p.tmaB, q.tmaB, p.K)
	}
	pick := func(k *kernel, kk kIndex, a, b func(kIndex) half8Src) half8Src {
		f := first(k, kk.slice)
		x, y := a(kk), b(kIndex{second(k, kk.slice), kk.off})
		return half8Src{base: k.sel(f, x.base, y.base), idx: k.sel(f, x.index(k), y.index(k)), ok: k.sel(f, x.ok, y.ok), inBounds: true, reread: x.reread && y.reread}
	}
	if p.srcA8 != nil && q.srcA8 != nil {
		r.srcA8 = func(k *kernel, z, m value.Value, kk kIndex, ok value.Value) half8Src {
			return pick(k, kk, func(i kIndex) half8Src { return p.srcA8(k, z, m, i, ok) },
				func(i kIndex) half8Src { return q.srcA8(k, z, m, i, ok) })
		}
	}
	if p.srcB8 != nil && q.srcB8 != nil {
		r.srcB8 = func(k *kernel, z value.Value, kk kIndex, n, ok value.Value) half8Src {
			return pick(k, kk, func(i kIndex) half8Src { return p.srcB8(k, z, i, n, ok) },
				func(i kIndex) half8Src { return q.srcB8(k, z, i, n, ok) })
		}
	}
	return r, nil
}

// channelsLastProblem turns a dense convolution's GEMM around for a
// channels-last output: C'[pix][oc] = sum_k X'[pix][k] W'[k][oc], so that
// consecutive threads store consecutive channels. Reading a channels-last
// input, k runs (r, q, c), channels fastest, so the gather coalesces too;
// the weights, read through nchw's loader at k's (c, r, q) position, then
// stride (they are small and shared by every block).
func channelsLastProblem(nchw gemmProblem, g convGeometry) gemmProblem {
	taps := g.KH * g.KW
	cFastest := g.InNHWC && taps > 1
	// kOf maps k to its (c, r, q) position, the order nchw's loaders use.
	kOf := func(k *kernel, kk value.Value) value.Value {
		if !cFastest {
			return kk
		}
		return k.madd(k.rem(kk, g.Cg), taps, k.div(kk, g.Cg))
	}
	return gemmProblem{M: nchw.N, N: nchw.M, K: nchw.K, Batch: 1,
		loadA: func(k *kernel, z, pix, kk, ok value.Value) value.Value {
			return nchw.loadB(k, z, kOf(k, kk), pix, ok)
		},
		loadB: func(k *kernel, z, kk, oc, ok value.Value) value.Value {
			return nchw.loadA(k, z, oc, kOf(k, kk), ok)
		},
		store: func(k *kernel, z, pix, oc, acc value.Value) {
			nchw.store(k, z, oc, pix, acc)
		},
		// An NCHW input runs along pixels; a channels-last one along k.
		AMContig: !g.InNHWC,
		BKContig: !cFastest,
	}
}

// depthwiseAt computes a depthwise conv's output at output coordinates co,
// then the prologue's element-wise chain.
func (c *nodeKernel) depthwiseAt(k *kernel, dw *ir.Node, co []value.Value) value.Value {
	g := convGeom(dw)
	nb, oc, oh, ow := co[0], co[1], co[2], co[3]
	ch := k.div(oc, g.Mg)
	var acc value.Value = cf(0)
	if len(dw.Inputs) > 2 {
		acc = k.loadAt(c.params[dw.Inputs[2]], oc)
	}
	w := c.params[dw.Inputs[1]]
	for r := 0; r < g.KH; r++ {
		for q := 0; q < g.KW; q++ {
			wv := k.loadAt(w, k.madd(oc, g.KH*g.KW, ci(r*g.KW+q)))
			xv := g.inputTap(k, c.params[dw.Inputs[0]], nb, ch, oh, ow, ci(r), ci(q), ci(1))
			acc = k.fma(wv, xv, acc)
		}
	}
	return c.applyChain(k, c.prologueChain(), dw.Out, acc, func() []value.Value { return co }, nil)
}

// emitDepthwise is one thread per output element summing its KHxKW window
// (fully unrolled: windows are small); NCHW without horizontal dilation
// takes runs of a row instead (emitDepthwiseRows).
func emitDepthwise(c *nodeKernel) (launchShape, error) {
	g := convGeom(c.n)
	if !g.InNHWC && !g.OutNHWC && g.DW == 1 {
		return emitDepthwiseRows(c, g), nil
	}
	k := c.k
	total := g.N * g.M * g.Ho * g.Wo
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	co := coordsAt(k, i, c.n.Out) // i runs over the output's memory
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
	k.store(c.applyEpilogue(k, acc, func() []value.Value { return co }, i), k.at(c.out, i))
	c.describe(fmt.Sprintf("dwconv%dx%d", g.KH, g.KW))
	return mapShape(total, k.threads), nil
}

// emitDepthwiseRows runs an NCHW depthwise convolution with one thread
// per run of costmodel.DepthwiseRun consecutive outputs of a row: each
// window row's input columns under the run, (run-1)*SW + KW of them, are
// loaded once and feed every output of the run, where a thread per
// output loads KW of them for each (3x3, stride 1, runs of 8: 10 loads a
// row for 8 outputs rather than 24).
func emitDepthwiseRows(c *nodeKernel, g convGeometry) launchShape {
	k := c.k
	run := costmodel.DepthwiseRun(g.Wo)
	runs := ceilDiv(g.Wo, run)
	total := g.N * g.M * g.Ho * runs
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	co := k.coords(i, []int{g.N, g.M, g.Ho, runs})
	nb, oc, oh := co[0], co[1], co[2]
	ow0 := k.mul(co[3], ci(run))
	ch := k.div(oc, g.Mg)
	acc := make([]value.Value, run)
	for v := range acc {
		acc[v] = cf(0)
		if len(c.in) > 2 {
			acc[v] = k.loadAt(c.in[2], oc)
		}
	}
	cols := (run-1)*g.SW + g.KW
	iw0 := k.sub(k.mul(ow0, ci(g.SW)), ci(g.PL))
	for r := 0; r < g.KH; r++ {
		ih := k.add(k.sub(k.mul(oh, ci(g.SH)), ci(g.PT)), ci(r*g.DH))
		rowOK := k.inRange(ih, g.H)
		row := k.mul(k.add(k.mul(k.add(k.mul(nb, ci(g.C)), ch), ci(g.H)), ih), ci(g.W))
		xs := make([]value.Value, cols)
		for j := range xs {
			iw := k.add(iw0, ci(j))
			xs[j] = k.loadGuarded(c.in[0], k.add(row, iw), k.and(rowOK, k.inRange(iw, g.W)), 0)
		}
		for q := 0; q < g.KW; q++ {
			wv := k.loadAt(c.in[1], k.madd(oc, g.KH*g.KW, ci(r*g.KW+q)))
			for v := range acc {
				acc[v] = k.fma(wv, xs[v*g.SW+q], acc[v])
			}
		}
	}
	for v, a := range acc {
		ow := k.add(ow0, ci(v))
		k.ifThen(k.lt(ow, ci(g.Wo)), func() {
			at := k.add(k.mul(k.add(k.mul(k.add(k.mul(nb, ci(g.M)), oc), ci(g.Ho)), oh), ci(g.Wo)), ow)
			y := c.applyEpilogue(k, a, func() []value.Value { return []value.Value{nb, oc, oh, ow} }, at)
			k.store(y, k.at(c.out, at))
		})
	}
	c.describe(fmt.Sprintf("dwconv%dx%d", g.KH, g.KW))
	return mapShape(total, k.threads)
}

// gemmOpProblem is gemm: y = alpha * op(A) op(B) + beta * C. A global
// average pool prologue computes A as the mean of each channel.
func gemmOpProblem(c *nodeKernel) gemmProblem {
	n := c.n
	a, b := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape
	ta, tb := n.Int("trans_a") != 0, n.Int("trans_b") != 0
	M, N, K, _ := costmodel.GemmShape(n)
	alpha, beta := n.Float("alpha"), n.Float("beta")
	p := gemmProblem{M: M, N: N, K: K, Batch: 1, AMContig: ta, BKContig: tb,
		loadA: func(k *kernel, _, m, kk, ok value.Value) value.Value {
			if ta {
				return k.loadGuarded(c.in[0], k.madd(kk, M, m), ok, 0)
			}
			return k.loadGuarded(c.in[0], k.madd(m, a[1], kk), ok, 0)
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
			at := k.madd(m, N, col)
			k.store(c.applyEpilogue(k, acc, func() []value.Value { return []value.Value{m, col} }, at), k.at(c.out, at))
		},
	}
	if gap := c.prologueAnchor(); gap != nil && gap.Op == ir.OpGlobalAvgPool {
		x := gap.Inputs[0].Type.Shape
		hw := int(ir.ShapeElems(x[2:]))
		src := c.params[gap.Inputs[0]]
		p.loadA = func(k *kernel, _, m, kk, ok value.Value) value.Value {
			row := k.madd(k.sel(ok, m, ci(0)), x[1], k.sel(ok, kk, ci(0)))
			sum := k.loop(ci(0), ci(hw), 1, []value.Value{cf(0)}, func(j value.Value, s []value.Value) []value.Value {
				return []value.Value{k.fadd(s[0], k.loadAt(src, poolIndex(k, gap.Inputs[0], row, j)))}
			})[0]
			return k.sel(ok, k.fmul(sum, cf(1/float64(hw))), cf(0))
		}
	}
	return p
}

// matmulProblem is N-D matmul with broadcast batch dims, one GEMM per
// batch index.
func matmulProblem(c *nodeKernel) (gemmProblem, error) {
	as, bs := c.n.Inputs[0].Type.Shape, c.n.Inputs[1].Type.Shape
	batch, M, K, N, err := ir.MatMulDims(as, bs)
	if err != nil {
		return gemmProblem{}, err
	}
	out := c.n.Out.Type.Shape
	batchOffset := func(k *kernel, z value.Value, shape []int, mat int) value.Value {
		if len(shape) <= 2 {
			return ci(0)
		}
		own := shape[:len(shape)-2]
		return k.mul(broadcastIndex(k, k.coords(z, batch), batch, own), ci(mat))
	}
	return gemmProblem{M: M, N: N, K: K, Batch: int(ir.ShapeElems(batch)),
		loadA: func(k *kernel, z, m, kk, ok value.Value) value.Value {
			return k.loadGuarded(c.in[0], k.add(batchOffset(k, z, as, M*K), k.madd(m, K, kk)), ok, 0)
		},
		loadB: func(k *kernel, z, kk, col, ok value.Value) value.Value {
			return k.loadGuarded(c.in[1], k.add(batchOffset(k, z, bs, K*N), k.madd(kk, N, col)), ok, 0)
		},
		store: func(k *kernel, z, m, col, acc value.Value) {
			idx := k.add(k.mul(z, ci(M*N)), k.madd(m, N, col))
			acc = c.applyEpilogue(k, acc, func() []value.Value { return k.coords(idx, out) }, idx)
			k.store(acc, k.at(c.out, idx))
		},
	}, nil
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
