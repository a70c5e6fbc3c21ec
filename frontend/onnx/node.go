package onnx

import (
	"fmt"
	"slices"
	"strconv"

	"cnnc/ir"
)

// opImporter is one row of the importer table: the first opset that has
// the op and the function that imports it (it reads c.opset where the op's
// meaning changed between opsets).
type opImporter struct {
	since int64
	fn    func(c *nodeCtx) error
}

// nodeCtx is the state of importing one ONNX node.
type nodeCtx struct {
	*importer
	n    *Node
	read map[string]bool // attributes the importer looked at
	outs []*operand
}

func (im *importer) importNode(n *Node, used map[string]bool) error {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return unsupported("op %s of domain %q (cnnc reads the default ONNX domain)", n.OpType, n.Domain)
	}
	row, ok := importers[n.OpType]
	if !ok {
		return unsupported("op %s", n.OpType)
	}
	if im.opset < row.since {
		return fmt.Errorf("op %s does not exist before opset %d", n.OpType, row.since)
	}
	c := &nodeCtx{importer: im, n: n, read: map[string]bool{}, outs: make([]*operand, len(n.Outputs))}
	if err := row.fn(c); err != nil {
		return err
	}
	for _, a := range n.Attrs {
		if !c.read[a.Name] {
			return unsupported("attribute %s", a.Name)
		}
	}
	for i, name := range n.Outputs {
		switch {
		case name == "":
		case c.outs[i] != nil:
			im.env[name] = c.outs[i]
		case used[name]:
			return unsupported("output %d (%q) of %s is used, cnnc computes only outputs 0..%d", i, name, n.OpType, countSet(c.outs)-1)
		}
	}
	return nil
}

func countSet(o []*operand) int {
	n := 0
	for _, x := range o {
		if x != nil {
			n++
		}
	}
	return n
}

// has reports whether optional input i is given.
func (c *nodeCtx) has(i int) bool { return i < len(c.n.Inputs) && c.n.Inputs[i] != "" }

func (c *nodeCtx) operand(i int) (*operand, error) {
	if !c.has(i) {
		return nil, fmt.Errorf("input %d is missing", i)
	}
	o, ok := c.env[c.n.Inputs[i]]
	if !ok {
		return nil, fmt.Errorf("input %q is not produced by any node, initializer or graph input", c.n.Inputs[i])
	}
	return o, nil
}

// value returns input i as an IR value.
func (c *nodeCtx) value(i int) (*ir.Value, error) {
	o, err := c.operand(i)
	if err != nil {
		return nil, err
	}
	return c.materialize(o, c.n.Name), nil
}

// values returns inputs from..len as IR values.
func (c *nodeCtx) values(from int) ([]*ir.Value, error) {
	var vs []*ir.Value
	for i := from; i < len(c.n.Inputs); i++ {
		if !c.has(i) {
			continue
		}
		v, err := c.value(i)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// typeOf is the static type of input i.
func (c *nodeCtx) typeOf(i int) (ir.Type, error) {
	o, err := c.operand(i)
	if err != nil {
		return ir.Type{}, err
	}
	if o.v != nil {
		return o.v.Type, nil
	}
	return o.c.Type, nil
}

// constant returns input i's data if it is known at import time.
func (c *nodeCtx) constant(i int) (*ir.Tensor, bool) {
	o, err := c.operand(i)
	if err != nil || o.c == nil {
		return nil, false
	}
	return o.c, true
}

// allConstant reports whether every given input is known at import time.
func (c *nodeCtx) allConstant() bool {
	for i := range c.n.Inputs {
		if !c.has(i) {
			continue
		}
		if _, ok := c.constant(i); !ok {
			return false
		}
	}
	return true
}

// ints returns input i as integers; it must be a constant.
func (c *nodeCtx) ints(i int, what string) ([]int64, error) {
	t, ok := c.constant(i)
	if !ok {
		return nil, c.needConstant(i, what)
	}
	if t.DType.IsFloat() {
		return nil, fmt.Errorf("%s (input %d) is %s, want integers", what, i, t.DType)
	}
	return t.Int64s(), nil
}

func (c *nodeCtx) needConstant(i int, what string) error {
	if !c.has(i) {
		return fmt.Errorf("%s (input %d) is missing", what, i)
	}
	return &NeedConstantError{Input: c.n.Inputs[i], What: what}
}

// scalarFloat returns constant input i as one float.
func (c *nodeCtx) scalarFloat(i int, what string) (float64, error) {
	t, ok := c.constant(i)
	if !ok {
		return 0, c.needConstant(i, what)
	}
	if t.Elems() != 1 {
		return 0, fmt.Errorf("%s (input %d) has shape %v, want a scalar", what, i, t.Shape)
	}
	return float64(t.Float32s()[0]), nil
}

func (c *nodeCtx) attr(name string, want AttrType) (*Attribute, error) {
	c.read[name] = true
	for _, a := range c.n.Attrs {
		if a.Name == name {
			if a.RefAttrName != "" {
				return nil, unsupported("attribute %s refers to a function attribute", name)
			}
			if a.Type != want && !(a.Type == AttrUndefined && want != AttrTensor) {
				return nil, fmt.Errorf("attribute %s has type %s, want %s", name, a.Type, want)
			}
			return a, nil
		}
	}
	return nil, nil
}

func (c *nodeCtx) attrInt(name string, def int64) (int64, error) {
	a, err := c.attr(name, AttrInt)
	if a == nil || err != nil {
		return def, err
	}
	return a.I, nil
}

func (c *nodeCtx) attrFloat(name string, def float64) (float64, error) {
	a, err := c.attr(name, AttrFloat)
	if a == nil || err != nil {
		return def, err
	}
	return widen(a.F), nil
}

func (c *nodeCtx) attrString(name, def string) (string, error) {
	a, err := c.attr(name, AttrString)
	if a == nil || err != nil {
		return def, err
	}
	return string(a.S), nil
}

// attrInts returns an int list attribute and whether it was present.
func (c *nodeCtx) attrInts(name string) ([]int64, bool, error) {
	a, err := c.attr(name, AttrInts)
	if a == nil || err != nil {
		return nil, false, err
	}
	return a.Ints, true, nil
}

// ignore marks attributes that do not change inference results.
func (c *nodeCtx) ignore(names ...string) {
	for _, n := range names {
		c.read[n] = true
	}
}

// emit adds an IR node and returns its value.
func (c *nodeCtx) emit(op *ir.OpInfo, inputs []*ir.Value, attrs ir.Attrs) (*ir.Value, error) {
	n, err := c.g.NewNode(op, inputs, attrs, c.n.Name)
	if err != nil {
		return nil, err
	}
	return n.Out, nil
}

// setValue makes output i the IR value v.
func (c *nodeCtx) setValue(i int, v *ir.Value) { c.outs[i] = &operand{v: v} }

// setConst makes output i a constant known at import time.
func (c *nodeCtx) setConst(i int, t *ir.Tensor) { c.outs[i] = &operand{c: t} }

// alias makes output i the same as input j.
func (c *nodeCtx) alias(i, j int) error {
	o, err := c.operand(j)
	if err != nil {
		return err
	}
	c.outs[i] = o
	return nil
}

// axisAttr reads an axis attribute and normalizes it for rank.
func (c *nodeCtx) axisAttr(name string, def int64, rank int) (int, error) {
	axis, err := c.attrInt(name, def)
	if err != nil {
		return 0, err
	}
	return normAxis(axis, rank, name)
}

// normAxis maps a possibly negative axis into 0..rank-1.
func normAxis(axis int64, rank int, what string) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("%s %d out of range for rank %d", what, axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// toInts converts int64 values to ints, clamping the huge sentinels that
// exporters use for "to the end" (shape rules reject anything too large).
func toInts(v []int64) []int {
	const limit = int64(1) << 50
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(max(-limit, min(limit, x)))
	}
	return out
}

// reshape emits (or folds) a reshape of input i to shape.
func (c *nodeCtx) reshape(i int, shape []int) error {
	if t, ok := c.constant(i); ok {
		c.setConst(0, &ir.Tensor{Type: ir.Type{DType: t.DType, Shape: shape}, Raw: t.Raw})
		return nil
	}
	x, err := c.value(i)
	if err != nil {
		return err
	}
	if slices.Equal(x.Type.Shape, shape) {
		c.setValue(0, x)
		return nil
	}
	v, err := c.emit(ir.OpReshape, []*ir.Value{x}, ir.Attrs{"shape": shape})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

// widen converts a float32 attribute to the float64 with the same shortest
// decimal form, so 1e-05 stays 1e-05 rather than 9.999999747378752e-06.
func widen(f float32) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		return float64(f)
	}
	return v
}
