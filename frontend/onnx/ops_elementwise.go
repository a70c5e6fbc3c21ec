package onnx

import (
	"fmt"
	"math"
	"slices"

	"cnnc/ir"
)

// floatAttr is a float attribute of an ONNX op with its ONNX default; the
// IR op's attribute has the same name.
type floatAttr struct {
	name string
	def  float64
}

// importUnary imports a one-input element-wise op with float attributes.
func importUnary(op *ir.OpInfo, attrs ...floatAttr) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		a := ir.Attrs{}
		for _, f := range attrs {
			v, err := c.attrFloat(f.name, f.def)
			if err != nil {
				return err
			}
			a[f.name] = v
		}
		return c.emitUnary(op, a)
	}
}

func (c *nodeCtx) emitUnary(op *ir.OpInfo, a ir.Attrs) error {
	x, err := c.value(0)
	if err != nil {
		return err
	}
	v, err := c.emit(op, []*ir.Value{x}, a)
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func importGelu(c *nodeCtx) error {
	approx, err := c.attrString("approximate", "none")
	if err != nil {
		return err
	}
	if approx != "none" && approx != "tanh" {
		return unsupported("approximate %q", approx)
	}
	return c.emitUnary(ir.OpGelu, ir.Attrs{"approximate": approx})
}

// importClip imports Clip: bounds are attributes before opset 11 and
// optional constant inputs from then on.
func importClip(c *nodeCtx) error {
	lo, hi := math.Inf(-1), math.Inf(1)
	var err error
	if c.opset < 11 {
		if lo, err = c.attrFloat("min", lo); err != nil {
			return err
		}
		if hi, err = c.attrFloat("max", hi); err != nil {
			return err
		}
	} else {
		if c.has(1) {
			if lo, err = c.scalarFloat(1, "min"); err != nil {
				return err
			}
		}
		if c.has(2) {
			if hi, err = c.scalarFloat(2, "max"); err != nil {
				return err
			}
		}
	}
	return c.emitUnary(ir.OpClip, ir.Attrs{"min": lo, "max": hi})
}

// intBinary evaluates integer arithmetic on constants (shape computations).
var intBinary = map[string]func(a, b int64) (int64, error){
	"Add": func(a, b int64) (int64, error) { return a + b, nil },
	"Sub": func(a, b int64) (int64, error) { return a - b, nil },
	"Mul": func(a, b int64) (int64, error) { return a * b, nil },
	"Div": func(a, b int64) (int64, error) {
		if b == 0 {
			return 0, fmt.Errorf("integer division by zero")
		}
		return a / b, nil
	},
	"Equal": func(a, b int64) (int64, error) {
		if a == b {
			return 1, nil
		}
		return 0, nil
	},
}

// importBinary imports a two-input broadcasting op. Integer constants are
// folded here, since they only ever compute shapes.
func importBinary(op *ir.OpInfo) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		if folded, err := c.foldIntBinary(); folded || err != nil {
			return err
		}
		if op == nil {
			return unsupported("%s on values computed at run time", c.n.OpType)
		}
		ins, err := c.values(0)
		if err != nil {
			return err
		}
		if c.opset < 7 {
			if ins[1], err = c.legacyBroadcast(ins[0].Type, ins[1]); err != nil {
				return err
			}
		}
		v, err := c.emit(op, ins, nil)
		if err != nil {
			return err
		}
		c.setValue(0, v)
		return nil
	}
}

func (c *nodeCtx) foldIntBinary() (bool, error) {
	f := intBinary[c.n.OpType]
	a, okA := c.constant(0)
	b, okB := c.constant(1)
	if f == nil || !okA || !okB || a.DType.IsFloat() || b.DType.IsFloat() {
		return false, nil
	}
	shape, err := ir.BroadcastShapes(a.Shape, b.Shape)
	if err != nil {
		return true, err
	}
	av, bv := broadcastInts(a.Int64s(), a.Shape, shape), broadcastInts(b.Int64s(), b.Shape, shape)
	out := make([]int64, len(av))
	for i := range out {
		if out[i], err = f(av[i], bv[i]); err != nil {
			return true, err
		}
	}
	t := ir.NewI64(shape, out)
	if c.n.OpType == "Equal" {
		t.DType = ir.Bool
		t.Raw = make([]byte, len(out))
		for i, v := range out {
			t.Raw[i] = byte(v)
		}
	}
	c.setConst(0, t)
	return true, nil
}

// broadcastInts expands values of shape from to shape to.
func broadcastInts(vals []int64, from, to []int) []int64 {
	n := int(ir.ShapeElems(to))
	out := make([]int64, n)
	fs := ir.Strides(from)
	off := len(to) - len(from)
	idx := make([]int, len(to))
	for i := range n {
		src := 0
		for d := range from {
			if from[d] != 1 {
				src += idx[d+off] * fs[d]
			}
		}
		out[i] = vals[src]
		for d := len(to) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < to[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// importVariadic imports Sum, Max and Min of any number of inputs as a
// chain of binary ops.
func importVariadic(op *ir.OpInfo) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		ins, err := c.values(0)
		if err != nil {
			return err
		}
		if len(ins) == 0 {
			return fmt.Errorf("%s needs at least one input", c.n.OpType)
		}
		acc := ins[0]
		for _, in := range ins[1:] {
			if acc, err = c.emit(op, []*ir.Value{acc, in}, nil); err != nil {
				return err
			}
		}
		c.setValue(0, acc)
		return nil
	}
}

// importWhere folds Where on constants (exporters use it in shape
// computations); a run-time Where is not supported.
func importWhere(c *nodeCtx) error {
	if !c.allConstant() {
		return unsupported("Where on values computed at run time")
	}
	cond, _ := c.constant(0)
	x, _ := c.constant(1)
	y, _ := c.constant(2)
	shape, err := ir.BroadcastShapes(cond.Shape, x.Shape)
	if err == nil {
		shape, err = ir.BroadcastShapes(shape, y.Shape)
	}
	if err != nil {
		return err
	}
	if x.DType.IsFloat() || y.DType.IsFloat() {
		return unsupported("Where on float constants")
	}
	cv := broadcastInts(cond.Int64s(), cond.Shape, shape)
	xv := broadcastInts(x.Int64s(), x.Shape, shape)
	yv := broadcastInts(y.Int64s(), y.Shape, shape)
	for i := range cv {
		if cv[i] == 0 {
			xv[i] = yv[i]
		}
	}
	c.setConst(0, ir.NewI64(shape, xv))
	return nil
}

// legacyBroadcast reshapes b for the broadcasting of opsets before 7: with
// broadcast=1, b's dims line up with a's starting at axis (by default at
// the end); PRelu's 1-D slope is per channel.
func (c *nodeCtx) legacyBroadcast(a ir.Type, b *ir.Value) (*ir.Value, error) {
	bs := b.Type.Shape
	if c.n.OpType == "PRelu" {
		if len(bs) == 1 && a.Rank() > 2 && bs[0] == a.Shape[1] {
			shape := append([]int{bs[0]}, make([]int, a.Rank()-2)...)
			for i := 1; i < len(shape); i++ {
				shape[i] = 1
			}
			return c.emit(ir.OpReshape, []*ir.Value{b}, ir.Attrs{"shape": shape})
		}
		return b, nil
	}
	bc, err := c.attrInt("broadcast", 0)
	if err != nil || bc == 0 {
		return b, err
	}
	axis, err := c.attrInt("axis", int64(a.Rank()-len(bs)))
	if err != nil {
		return b, err
	}
	ax, err := normAxis(axis, a.Rank(), "axis")
	if err != nil {
		return b, err
	}
	trailing := a.Rank() - ax - len(bs)
	if trailing < 0 {
		return b, fmt.Errorf("b of shape %v does not fit a %v at axis %d", bs, a.Shape, ax)
	}
	if trailing == 0 {
		return b, nil
	}
	shape := slices.Clone(bs)
	for range trailing {
		shape = append(shape, 1)
	}
	return c.emit(ir.OpReshape, []*ir.Value{b}, ir.Attrs{"shape": shape})
}
