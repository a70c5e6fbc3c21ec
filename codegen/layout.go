package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/value"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// Channels-last values (ir.LayoutNHWC, chosen by passes.ChooseLayout) keep
// their NCHW shape in the IR; kernels address them through these two
// functions, everything else as before.

// nhwc reports whether v is stored channels last.
func nhwc(v *ir.Value) bool { return ir.LayoutOf(v) == ir.LayoutNHWC }

// offset4 is the element of 4-D v at logical coordinates co = [n, c, h,
// w] as a linear offset in v's memory layout.
func offset4(k *kernel, v *ir.Value, co []value.Value) value.Value {
	s := v.Type.Shape
	if !nhwc(v) {
		return k.linear(co, ir.Strides(s))
	}
	// ((n*H + h)*W + w)*C + c
	return k.add(k.mul(k.add(k.mul(k.add(k.mul(co[0], ci(s[2])), co[2]), ci(s[3])), co[3]), ci(s[1])), co[1])
}

// coordsAt are the logical coordinates of the element at linear offset i
// of v's memory (the inverse of offset4; NCHW's k.coords otherwise).
func coordsAt(k *kernel, i value.Value, v *ir.Value) []value.Value {
	s := v.Type.Shape
	if !nhwc(v) {
		return k.coords(i, s)
	}
	p := k.coords(i, []int{s[0], s[2], s[3], s[1]}) // n, h, w, c
	return []value.Value{p[0], p[3], p[1], p[2]}
}

// operandAt loads in (an operand of an element-wise op whose output has
// shape outShape) at the output's logical coordinates co: through its
// layout when it has the output's shape, broadcasting otherwise (by NCHW
// strides: a broadcast operand is NCHW or of 1x1 pixels, the same memory).
func operandAt(k *kernel, param value.Value, in *ir.Value, co []value.Value, outShape []int) value.Value {
	if nhwc(in) && slices.Equal(in.Type.Shape, outShape) {
		return k.loadAt(param, offset4(k, in, co))
	}
	return k.loadAt(param, broadcastIndex(k, co, outShape, in.Type.Shape))
}

// ohwiWeights reports a convolution whose weights the kernel reads in
// (oc, r, q, c) order, channels fastest: a dense KxK convolution between
// channels-last values, turned around (channelsLastProblem) so that its K
// runs over taps then channels. The weights file then holds a copy of
// W[oc][c][r][q] transposed to W[oc][r][q][c] for it, so that both GEMM
// operands are contiguous along K (128-bit staging in fp16, coalesced
// loads in fp32). Constants keep their IR shape; only the bytes move.
func ohwiWeights(n *ir.Node) bool {
	if n.Op != ir.OpConv2D || n.Int("group") != 1 || n.Inputs[1].Def == nil || n.Inputs[1].Def.Op != ir.OpConst {
		return false
	}
	if _, ok := costmodel.PaddedInputOf(n); ok {
		return false // laid out for its padded input instead
	}
	w := n.Inputs[1].Type.Shape
	return w[2]*w[3] > 1 && nhwc(n.Inputs[0]) && nhwc(n.Out)
}

// transposeOHWI rearranges a constant's bytes (elements of esize bytes,
// shape [O, I, H, W]) into [O, H, W, I] order.
func transposeOHWI(data []byte, shape []int, esize int) []byte {
	o, c, h, w := shape[0], shape[1], shape[2], shape[3]
	out := make([]byte, len(data))
	for oc := range o {
		for ch := range c {
			for r := range h {
				for q := range w {
					src := ((oc*c+ch)*h+r)*w + q
					dst := ((oc*h+r)*w+q)*c + ch
					copy(out[dst*esize:(dst+1)*esize], data[src*esize:(src+1)*esize])
				}
			}
		}
	}
	return out
}
