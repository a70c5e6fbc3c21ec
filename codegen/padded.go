package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// A convolution of few input channels (costmodel.PaddedInput) runs as
// two launches: emitPadInput copies its input into the workspace as
// P[n][hp][wp][cp] (half, zero outside the input and past its channels),
// then the tensor-core GEMM reads K as (r, j): window row r, and j =
// q*Cp + c along a row of P, against weights laid out to match
// (padWeights).

// emitPadInput is the first launch: one thread per pixel of P writes its
// Cp halves in one 64- or 128-bit store.
func emitPadInput(c *nodeKernel, pi costmodel.PaddedInput, dst value.Value) launchShape {
	k := c.k
	g := convGeom(c.n)
	total := pi.N * pi.Hp * pi.Wp
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	co := k.coords(i, []int{pi.N, pi.Hp, pi.Wp})
	ih, iw := k.sub(co[1], ci(pi.PT)), k.sub(co[2], ci(pi.PL))
	ok := k.and(k.inRange(ih, g.H), k.inRange(iw, g.W))
	vals := make([]value.Value, pi.Cp)
	for ch := range vals {
		vals[ch] = cf(0)
		if ch < pi.C {
			at := offset4(k, c.n.Inputs[0], []value.Value{co[0], ci(ch), k.sel(ok, ih, ci(0)), k.sel(ok, iw, ci(0))})
			vals[ch] = k.loadGuarded(c.in[0], at, ok, 0)
		}
	}
	words := types.NewVector(uint64(pi.Cp/2), i32)
	var v value.Value = constant.NewUndef(words)
	for w := 0; w < pi.Cp/2; w++ {
		v = k.b.NewInsertElement(v, k.packHalves(vals[2*w], vals[2*w+1]), ci(w))
	}
	st := k.b.NewStore(v, k.b.NewBitCast(k.at(dst, k.mul(i, ci(pi.Cp))), types.NewPointer(words)))
	st.Align = 8
	if pi.Cp == 8 {
		st.Align = 16
	}
	return mapShape(total, k.threads)
}

// packHalves rounds a and b to half and packs them into one i32 word, a
// in the low half (see load8 on why halves travel as words): one
// cvt.rn.f16x2.f32 (sm_80 and up, every target's), which puts its first
// operand in the high half, rather than two conversions and a move.
func (k *kernel) packHalves(a, b value.Value) value.Value {
	cvt := k.mod.getIntrinsic("llvm.nvvm.ff2f16x2.rn", types.NewVector(2, types.Half), f32, f32)
	return k.b.NewBitCast(k.b.NewCall(cvt, b, a), i32)
}

// paddedProblem is q (the convolution's channels-last GEMM: pixels along
// M, output channels along N) reading A from the padded input P and B
// from the weights in (oc, r, j) order, K = KH x Run.
func paddedProblem(c *nodeKernel, q gemmProblem, pi costmodel.PaddedInput, p value.Value) gemmProblem {
	w := c.in[1]
	K := pi.K()
	hw := pi.Ho * pi.Wo
	bk := costmodel.TileFromInts(c.n.Sched.Tile).BK
	// row0 is P's index of the window's top-left corner for output pixel
	// pix: the same in every K slice.
	row0 := func(k *kernel, pix value.Value) value.Value {
		nb, rest := k.div(pix, hw), k.rem(pix, hw)
		hp, wp := k.mul(k.div(rest, pi.Wo), ci(pi.SH)), k.mul(k.rem(rest, pi.Wo), ci(pi.SW))
		return k.mul(k.add(k.mul(k.add(k.mul(nb, ci(pi.Hp)), hp), ci(pi.Wp)), wp), ci(pi.Cp))
	}
	// rowOf is P's offset of window row r: r*DH rows down.
	rowOf := func(k *kernel, r value.Value) value.Value { return k.mul(r, ci(pi.DH*pi.Wp*pi.Cp)) }
	q.K = K
	q.loadA = func(k *kernel, _, pix, kk, ok value.Value) value.Value {
		idx := k.add(row0(k, pix), k.add(rowOf(k, k.div(kk, pi.Run)), k.rem(kk, pi.Run)))
		return k.loadGuarded(p, idx, ok, 0)
	}
	q.loadB = func(k *kernel, _, kk, oc, ok value.Value) value.Value {
		return k.loadGuarded(w, k.madd(oc, K, kk), ok, 0)
	}
	q.srcA8 = func(k *kernel, _, pix value.Value, kk kIndex, ok value.Value) half8Src {
		// Rows past M read the last pixel's window (and stage zeros);
		// with K a multiple of BK every staged k is inside K too (see
		// sliceAt), so every address lies in P, with no select per piece.
		pix = k.min(pix, ci(q.M-1))
		var r, j value.Value
		switch {
		case pi.Run%bk == 0: // a slice within one window row
			r, j = k.div(kk.slice, pi.Run), k.add(k.rem(kk.slice, pi.Run), kk.off)
		case bk%pi.Run == 0: // whole rows per slice: the thread's part of the slice picks one
			r, j = k.add(k.div(kk.slice, pi.Run), k.div(kk.off, pi.Run)), k.rem(kk.off, pi.Run)
		default:
			r, j = k.div(kk.abs(k), pi.Run), k.rem(kk.abs(k), pi.Run)
		}
		return half8Src{base: p, idx: k.add(row0(k, pix), k.add(rowOf(k, r), j)), ok: ok, inBounds: K%bk == 0, reread: true}
	}
	q.srcB8 = func(k *kernel, _ value.Value, kk kIndex, oc, ok value.Value) half8Src {
		return half8Src{base: w, idx: k.madd(oc, K, kk.abs(k)), ok: ok}
	}
	q.AMContig, q.BKContig = false, true
	q.tmaA, q.tmaB = nil, nil // P's window rows are not an im2col of 64-channel pixels
	return q
}

// padWeights lays out conv weights W[oc][c][r][q] (elements of esize
// bytes) as W'[oc][r][j] for a padded input: j = q*Cp + c, zero where q
// is past the window or c past the channels.
func padWeights(data []byte, shape []int, esize int, pi costmodel.PaddedInput) []byte {
	o, c, h, w := shape[0], shape[1], shape[2], shape[3]
	out := make([]byte, o*pi.K()*esize)
	for oc := range o {
		for ch := range c {
			for r := range h {
				for q := range w {
					src := ((oc*c+ch)*h+r)*w + q
					dst := oc*pi.K() + r*pi.Run + q*pi.Cp + ch
					copy(out[dst*esize:(dst+1)*esize], data[src*esize:(src+1)*esize])
				}
			}
		}
	}
	return out
}

// paddedKey names a padded copy of a weights constant: the layout
// depends on the window row's length and the channels per pixel.
type paddedKey struct {
	v        *ir.Value
	run, cpx int
}

// paddedWeights reports whether n reads weights v through padWeights,
// and which copy.
func paddedWeights(n *ir.Node, v *ir.Value) (costmodel.PaddedInput, paddedKey, bool) {
	pi, ok := costmodel.PaddedInputOf(n)
	return pi, paddedKey{v, pi.Run, pi.Cp}, ok && n.Inputs[1] == v
}
