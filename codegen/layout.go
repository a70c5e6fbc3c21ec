package codegen

import (
	"github.com/llir/llvm/ir/value"

	"cnnc/ir"
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
// layout when it has the output's shape, broadcasting otherwise (only
// NCHW values broadcast).
func operandAt(k *kernel, param value.Value, in *ir.Value, co []value.Value, outShape []int) value.Value {
	if nhwc(in) {
		return k.loadAt(param, offset4(k, in, co))
	}
	return k.loadAt(param, broadcastIndex(k, co, outShape, in.Type.Shape))
}
