package costmodel

import "cnnc/ir"

// PaddedInput is how a dense convolution of few input channels (a stem:
// RGB in, 7x7 or 3x3 window) runs on the fp16 tensor cores. A first
// kernel copies the input, zero-padded, to a channels-last buffer of Cp
// channels per pixel (C rounded up to 4 or 8) with the convolution's
// padding made explicit; the GEMM then takes its K as KH rows of Run
// halves, one window row each: the KW taps' Cp channels, which lie
// side by side in that buffer, rounded up to a power of two (or a
// multiple of 32) with weights of zero. Every 128-bit piece of a row is
// then one aligned load from the buffer, with no bounds to check, where
// the input as it is would give 16-byte pieces of no alignment at all
// (C = 3). The price is the zero weights: K = 7 x 32 = 224 instead of
// 147 for ResNet's stem. They multiply real pixels (the next window's
// columns), so an infinite input value also makes NaN in outputs whose
// window does not hold it.
type PaddedInput struct {
	N, C, Cp     int // batch, channels and padded channels
	Hp, Wp       int // the padded buffer's rows and columns
	KH, Run, SH  int
	SW, PT, PL   int
	DH           int
	Ho, Wo, Outs int // output rows, columns and channels
}

// PaddedInputOf says whether conv2d node n runs on a padded input, and
// its geometry: on a tensor-core tile (fp16, staged in 128-bit pieces),
// one group, a window wider than one pixel, no
// horizontal dilation, at most 8 input channels (4 where the stride is
// even, so that a pixel is 8 bytes and every output column's row starts
// 16-byte aligned), constant weights (laid out for it when compiled),
// and a channels-last output (the GEMM has pixels along M).
func PaddedInputOf(n *ir.Node) (PaddedInput, bool) {
	if n.Op != ir.OpConv2D || !TileFromInts(n.Sched.Tile).TensorCore() || n.Int("group") != 1 || ir.LayoutOf(n.Out) != ir.LayoutNHWC ||
		n.Inputs[1].Def == nil || n.Inputs[1].Def.Op != ir.OpConst {
		return PaddedInput{}, false
	}
	x, w, y := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape, n.Out.Type.Shape
	s, d, p := n.Ints("strides"), n.Ints("dilations"), n.Ints("pads")
	c, kh, kw := x[1], w[2], w[3]
	if c > 8 || c%8 == 0 || kh*kw == 1 || d[1] != 1 {
		return PaddedInput{}, false
	}
	cp := 8
	if c <= 4 && s[1]%2 == 0 {
		cp = 4
	}
	run := kw * cp
	switch {
	case run <= 32:
		run = max(8, nextPow2(run))
	default:
		run = (run + 31) / 32 * 32
	}
	pi := PaddedInput{N: x[0], C: c, Cp: cp, KH: kh, Run: run, SH: s[0], SW: s[1], PT: p[0], PL: p[1], DH: d[0],
		Ho: y[2], Wo: y[3], Outs: y[1]}
	// Rows oh*SH + r*DH and columns ow*SW + j/Cp of the padded buffer
	// are read (coordinates shifted by the top and left padding).
	pi.Hp = (pi.Ho-1)*pi.SH + (kh-1)*pi.DH + 1
	pi.Wp = (pi.Wo-1)*pi.SW + run/cp
	pi.Wp += pi.Wp % 2 // rows of an even number of 8-byte pixels stay 16-byte aligned
	return pi, true
}

// K is the GEMM's padded K: KH rows of Run.
func (p PaddedInput) K() int { return p.KH * p.Run }

// Elems is the padded buffer's size in halves.
func (p PaddedInput) Elems() int64 { return int64(p.N) * int64(p.Hp) * int64(p.Wp) * int64(p.Cp) }

func nextPow2(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// WorkspaceBytes is the scratch memory a GEMM-core kernel needs: split-K
// partial sums (float), then a padded input (half), each starting
// 256-byte aligned; 0 for none.
func WorkspaceBytes(n *ir.Node) (total, paddedAt int64) {
	if k := n.Sched.SplitK; k > 1 && n.Sched.Reduce != ir.ReduceCluster {
		m, nn, _, batch := GemmShape(n)
		total = alignWorkspace(int64(m) * int64(nn) * int64(batch) * 4 * int64(k))
	}
	paddedAt = total
	if pi, ok := PaddedInputOf(n); ok {
		total += alignWorkspace(pi.Elems() * 2)
	}
	return total, paddedAt
}

func alignWorkspace(n int64) int64 { return (n + 255) / 256 * 256 }
