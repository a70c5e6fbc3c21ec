package codegen

import (
	"fmt"
	"math"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"cnnc/ir"
)

// mapShape is the launch of a one-thread-per-element kernel.
func mapShape(total, threads int) launchShape {
	return launchShape{grid: [3]int{max(1, ceilDiv(total, threads)), 1, 1}, block: threads}
}

// emitMap writes a kernel with one thread per output element; value
// computes the element from the output coordinates.
func emitMap(c *nodeKernel, at func(k *kernel, co []value.Value) value.Value) launchShape {
	k := c.k
	shape := c.n.Out.Type.Shape
	total := int(ir.ShapeElems(shape))
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	// i runs over the output's memory; co are its logical coordinates.
	co := coordsAt(k, i, c.n.Out)
	k.store(c.applyEpilogue(k, at(k, co), func() []value.Value { return co }, i), k.at(c.out, i))
	return mapShape(total, k.threads)
}

// lanes8 says the kernel's output and in are channels-last half tensors
// of channels in eights: emitMap8 can take eight channels per thread.
func (c *nodeKernel) lanes8(in *ir.Value) bool {
	out := c.n.Out
	return nhwc(out) && nhwc(in) && out.Type.Shape[1]%8 == 0 && in.Type.Shape[1]%8 == 0 &&
		elemOf(c.out) == types.Half && elemOf(c.params[in]) == types.Half
}

// emitMap8 is emitMap over a channels-last half output with channels in
// eights, eight consecutive channels of one pixel per thread: at8 returns
// the eight values at co (co[1] the first channel), and the epilogue
// reads and the store move 128 bits at a time.
func emitMap8(c *nodeKernel, at8 func(k *kernel, co []value.Value) []value.Value) launchShape {
	k := c.k
	total := int(ir.ShapeElems(c.n.Out.Type.Shape)) / 8
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	at := k.mul(i, ci(8))
	co := coordsAt(k, at, c.n.Out)
	c.storeEpilogue8(k, at8(k, co), at, func(j int) []value.Value {
		return []value.Value{co[0], k.add(co[1], ci(j)), co[2], co[3]}
	}, nil)
	return mapShape(total, k.threads)
}

// operand loads input j at the output coordinates, broadcasting; a
// constant scalar input becomes an immediate.
func (c *nodeKernel) operand(k *kernel, j int, co []value.Value) value.Value {
	in := c.n.Inputs[j]
	if v, ok := scalarConst(in); ok {
		return cf(v)
	}
	return operandAt(k, c.in[j], in, co, c.n.Out.Type.Shape)
}

// scalarConst returns the value of a one-element constant.
func scalarConst(v *ir.Value) (float64, bool) {
	if v.Def == nil || v.Def.Op != ir.OpConst || v.Def.Const == nil || v.Type.Elems() != 1 || !v.Type.DType.IsFloat() {
		return 0, false
	}
	return float64(v.Def.Const.Float32s()[0]), true
}

func emitElementwise(c *nodeKernel) (launchShape, error) {
	n := c.n
	if n.Op.Unary != nil {
		return emitMap(c, func(k *kernel, co []value.Value) value.Value {
			return emitUnary(k, n, c.operand(k, 0, co))
		}), nil
	}
	return emitMap(c, func(k *kernel, co []value.Value) value.Value {
		return emitBinary(k, n, c.operand(k, 0, co), c.operand(k, 1, co))
	}), nil
}

func (k *kernel) sigmoid(x value.Value) value.Value {
	return k.fdiv(cf(1), k.fadd(cf(1), k.exp(k.b.NewFNeg(x))))
}

// tanh is 1 - 2/(exp(2x)+1), exact at both tails.
func (k *kernel) tanh(x value.Value) value.Value {
	return k.fsub(cf(1), k.fdiv(cf(2), k.fadd(k.exp(k.fmul(x, cf(2))), cf(1))))
}

// erf is Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
func (k *kernel) erf(x value.Value) value.Value {
	ax := k.fabs(x)
	t := k.fdiv(cf(1), k.fma(ax, cf(0.3275911), cf(1)))
	var poly value.Value = cf(1.061405429)
	for _, a := range []float64{-1.453152027, 1.421413741, -0.284496736, 0.254829592} {
		poly = k.fma(poly, t, cf(a))
	}
	poly = k.fmul(poly, t)
	y := k.fsub(cf(1), k.fmul(poly, k.exp(k.b.NewFNeg(k.fmul(ax, ax)))))
	return k.sel(k.fcmp(enum.FPredOLT, x, cf(0)), k.b.NewFNeg(y), y)
}

func (k *kernel) softplus(x value.Value) value.Value {
	return k.sel(k.fcmp(enum.FPredOGT, x, cf(20)), x, k.log(k.fadd(cf(1), k.exp(x))))
}

func (k *kernel) clamp(x value.Value, lo, hi float64) value.Value {
	if !math.IsInf(lo, -1) {
		x = k.fmax(x, cf(lo))
	}
	if !math.IsInf(hi, 1) {
		x = k.fmin(x, cf(hi))
	}
	return x
}

// whereNegative is x < 0 ? neg : x.
func (k *kernel) whereNegative(x, neg value.Value) value.Value {
	return k.sel(k.fcmp(enum.FPredOLT, x, cf(0)), neg, x)
}

// emitUnary is the element-wise function of a one-input op; it must agree
// with the op table's Unary.
func emitUnary(k *kernel, n *ir.Node, x value.Value) value.Value {
	switch n.Op {
	case ir.OpRelu:
		return k.sel(k.fcmp(enum.FPredOLT, x, cf(0)), cf(0), x)
	case ir.OpCopy:
		return x
	case ir.OpSigmoid:
		return k.sigmoid(x)
	case ir.OpTanh:
		return k.tanh(x)
	case ir.OpErf:
		return k.erf(x)
	case ir.OpExp:
		return k.exp(x)
	case ir.OpSqrt:
		return k.sqrt(x)
	case ir.OpNeg:
		return k.b.NewFNeg(x)
	case ir.OpAbs:
		return k.fabs(x)
	case ir.OpReciprocal:
		return k.fdiv(cf(1), x)
	case ir.OpSoftplus:
		return k.softplus(x)
	case ir.OpMish:
		return k.fmul(x, k.tanh(k.softplus(x)))
	case ir.OpHardSwish:
		return k.fmul(x, k.clamp(k.fma(x, cf(1.0/6), cf(0.5)), 0, 1))
	case ir.OpLeakyRelu:
		return k.whereNegative(x, k.fmul(x, cf(n.Float("alpha"))))
	case ir.OpElu:
		return k.whereNegative(x, k.fmul(cf(n.Float("alpha")), k.fsub(k.exp(x), cf(1))))
	case ir.OpSwish:
		return k.fmul(x, k.sigmoid(k.fmul(x, cf(n.Float("alpha")))))
	case ir.OpHardSigmoid:
		return k.clamp(k.fma(x, cf(n.Float("alpha")), cf(n.Float("beta"))), 0, 1)
	case ir.OpSelu:
		g, a := n.Float("gamma"), n.Float("alpha")
		neg := k.fmul(cf(g*a), k.fsub(k.exp(x), cf(1)))
		return k.sel(k.fcmp(enum.FPredOLE, x, cf(0)), neg, k.fmul(x, cf(g)))
	case ir.OpClip:
		return k.clamp(x, n.Float("min"), n.Float("max"))
	case ir.OpGelu:
		if n.Str("approximate") == "tanh" {
			inner := k.fmul(cf(math.Sqrt(2/math.Pi)), k.fma(k.fmul(k.fmul(x, x), x), cf(0.044715), x))
			return k.fmul(k.fmul(x, cf(0.5)), k.fadd(cf(1), k.tanh(inner)))
		}
		return k.fmul(k.fmul(x, cf(0.5)), k.fadd(cf(1), k.erf(k.fmul(x, cf(1/math.Sqrt2)))))
	}
	panic(fmt.Sprintf("codegen: unary op %s has no emitter", n.Op.Name))
}

// emitBinary is the element-wise function of a two-input op.
func emitBinary(k *kernel, n *ir.Node, a, b value.Value) value.Value {
	switch n.Op {
	case ir.OpAdd:
		return k.fadd(a, b)
	case ir.OpSub:
		return k.fsub(a, b)
	case ir.OpMul:
		return k.fmul(a, b)
	case ir.OpDiv:
		return k.fdiv(a, b)
	case ir.OpMax:
		return k.fmax(a, b)
	case ir.OpMin:
		return k.fmin(a, b)
	case ir.OpPRelu:
		return k.whereNegative(a, k.fmul(a, b))
	case ir.OpPow:
		if e, ok := scalarConst(n.Inputs[1]); ok {
			switch e {
			case 1:
				return a
			case 2:
				return k.fmul(a, a)
			case 3:
				return k.fmul(k.fmul(a, a), a)
			case 0.5:
				return k.sqrt(a)
			}
		}
		return k.exp(k.fmul(b, k.log(a)))
	}
	panic(fmt.Sprintf("codegen: binary op %s has no emitter", n.Op.Name))
}

// emitBatchNorm: y = (x - mean[c]) * scale[c] / sqrt(var[c] + eps) + bias[c].
func emitBatchNorm(c *nodeKernel) (launchShape, error) {
	eps := c.n.Float("epsilon")
	return emitMap(c, func(k *kernel, co []value.Value) value.Value {
		ch := co[1]
		x := k.loadAt(c.in[0], k.linear(co, ir.Strides(c.n.Out.Type.Shape)))
		scale, bias := k.loadAt(c.in[1], ch), k.loadAt(c.in[2], ch)
		mean, vr := k.loadAt(c.in[3], ch), k.loadAt(c.in[4], ch)
		inv := k.fdiv(scale, k.sqrt(k.fadd(vr, cf(eps))))
		return k.fma(k.fsub(x, mean), inv, bias)
	}), nil
}

// emitPool lowers maxpool2d and avgpool2d: one thread per output element
// over its (unrolled) window.
func emitPool(c *nodeKernel) (launchShape, error) {
	n := c.n
	x := n.Inputs[0].Type.Shape
	kern, st, dl, pd := n.Ints("kernel"), n.Ints("strides"), n.Ints("dilations"), n.Ints("pads")
	isMax := n.Op == ir.OpMaxPool
	c.describe(fmt.Sprintf("%s%dx%d", map[bool]string{true: "maxpool", false: "avgpool"}[isMax], kern[0], kern[1]))
	if isMax && c.lanes8(n.Inputs[0]) {
		// Eight channels of one output pixel per thread: a 128-bit load
		// per tap.
		return emitMap8(c, func(k *kernel, co []value.Value) []value.Value {
			acc := make([]value.Value, 8)
			for j := range acc {
				acc[j] = cf(math.Inf(-1))
			}
			for r := 0; r < kern[0]; r++ {
				ih := k.add(k.sub(k.mul(co[2], ci(st[0])), ci(pd[0])), ci(r*dl[0]))
				for q := 0; q < kern[1]; q++ {
					iw := k.add(k.sub(k.mul(co[3], ci(st[1])), ci(pd[1])), ci(q*dl[1]))
					ok := k.and(k.inRange(ih, x[2]), k.inRange(iw, x[3]))
					v := k.load8(c.in[0], k.sel(ok, offset4(k, n.Inputs[0], []value.Value{co[0], co[1], ih, iw}), ci(0)))
					for j := range acc {
						acc[j] = k.fmax(acc[j], k.sel(ok, v[j], cf(math.Inf(-1))))
					}
				}
			}
			return acc
		}), nil
	}
	return emitMap(c, func(k *kernel, co []value.Value) value.Value {
		in := n.Inputs[0]
		var acc, count value.Value = cf(0), cf(0)
		if isMax {
			acc = cf(math.Inf(-1))
		}
		for r := 0; r < kern[0]; r++ {
			ih := k.add(k.sub(k.mul(co[2], ci(st[0])), ci(pd[0])), ci(r*dl[0]))
			for q := 0; q < kern[1]; q++ {
				iw := k.add(k.sub(k.mul(co[3], ci(st[1])), ci(pd[1])), ci(q*dl[1]))
				ok := k.and(k.inRange(ih, x[2]), k.inRange(iw, x[3]))
				fill := 0.0
				if isMax {
					fill = math.Inf(-1)
				}
				v := k.loadGuarded(c.in[0], offset4(k, in, []value.Value{co[0], co[1], ih, iw}), ok, fill)
				if isMax {
					acc = k.fmax(acc, v)
					continue
				}
				acc = k.fadd(acc, v)
				counted := ok
				if n.Int("count_include_pad") != 0 {
					counted = k.and(k.ge(ih, ci(-pd[0])), k.lt(ih, ci(x[2]+pd[2])), k.ge(iw, ci(-pd[1])), k.lt(iw, ci(x[3]+pd[3])))
				}
				count = k.fadd(count, k.sel(counted, cf(1), cf(0)))
			}
		}
		if isMax {
			return acc
		}
		return k.fdiv(acc, count)
	}), nil
}

// emitLRN: y = x / (bias + alpha/size * sum of x^2 over the channel window)^beta.
func emitLRN(c *nodeKernel) (launchShape, error) {
	n := c.n
	shape := n.Out.Type.Shape
	size := n.Int("size")
	lo, hi := (size-1)/2, size-1-(size-1)/2
	strides := ir.Strides(shape)
	return emitMap(c, func(k *kernel, co []value.Value) value.Value {
		idx := k.linear(co, strides)
		var sum value.Value = cf(0)
		for d := -lo; d <= hi; d++ {
			ch := k.add(co[1], ci(d))
			v := k.loadGuarded(c.in[0], k.add(idx, ci(d*strides[1])), k.inRange(ch, shape[1]), 0)
			sum = k.fma(v, v, sum)
		}
		den := k.fma(sum, cf(n.Float("alpha")/float64(size)), cf(n.Float("bias")))
		return k.fdiv(k.loadAt(c.in[0], idx), k.exp(k.fmul(cf(n.Float("beta")), k.log(den))))
	}), nil
}

// emitTranspose: output dim d is input dim perm[d].
func emitTranspose(c *nodeKernel) (launchShape, error) {
	perm := c.n.Ints("perm")
	in := ir.Strides(c.n.Inputs[0].Type.Shape)
	st := make([]int, len(perm))
	for d, p := range perm {
		st[d] = in[p]
	}
	return emitMap(c, func(k *kernel, co []value.Value) value.Value {
		return k.loadAt(c.in[0], k.linear(co, st))
	}), nil
}

// emitSlice: input coordinate d is starts[d] + co[d]*steps[d].
func emitSlice(c *nodeKernel) (launchShape, error) {
	starts, steps := c.n.Ints("starts"), c.n.Ints("steps")
	in := ir.Strides(c.n.Inputs[0].Type.Shape)
	st := make([]int, len(in))
	off := 0
	for d := range in {
		st[d] = in[d] * steps[d]
		off += starts[d] * in[d]
	}
	return emitMap(c, func(k *kernel, co []value.Value) value.Value {
		return k.loadAt(c.in[0], k.add(ci(off), k.linear(co, st)))
	}), nil
}

// emitPad: input coordinate is co - pad_begin; outside the input, value.
func emitPad(c *nodeKernel) (launchShape, error) {
	pads := c.n.Ints("pads")
	shape := c.n.Inputs[0].Type.Shape
	in := ir.Strides(shape)
	return emitMap(c, func(k *kernel, co []value.Value) value.Value {
		var idx value.Value = ci(0)
		var ok value.Value = ci(1)
		conds := []value.Value{}
		for d := range shape {
			x := k.sub(co[d], ci(pads[d]))
			conds = append(conds, k.inRange(x, shape[d]))
			idx = k.add(idx, k.mul(x, ci(in[d])))
		}
		ok = k.and(conds...)
		return k.loadGuarded(c.in[0], idx, ok, c.n.Float("value"))
	}), nil
}

// emitConcat: one thread per output element, reading the input whose
// range along axis holds it.
func emitConcat(c *nodeKernel) (launchShape, error) {
	n := c.n
	ax := n.Int("axis")
	shape := n.Out.Type.Shape
	total := int(ir.ShapeElems(shape))
	k := c.k
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	co := k.coords(i, shape)
	off := 0
	for j, in := range n.Inputs {
		size := in.Type.Shape[ax]
		lo := off
		k.ifThen(k.and(k.ge(co[ax], ci(lo)), k.lt(co[ax], ci(lo+size))), func() {
			local := append([]value.Value{}, co...)
			local[ax] = k.sub(co[ax], ci(lo))
			k.store(k.loadAt(c.in[j], k.linear(local, ir.Strides(in.Type.Shape))), k.at(c.out, i))
		})
		off += size
	}
	return mapShape(total, k.threads), nil
}
