package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"cnnc/ir"
)

func importConstant(c *nodeCtx) error {
	for _, a := range c.n.Attrs {
		c.read[a.Name] = true
		switch a.Name {
		case "value":
			if a.T == nil {
				return fmt.Errorf("attribute value has no tensor")
			}
			t, err := convertTensor(a.T, c.ext)
			if err != nil {
				return err
			}
			c.setConst(0, t)
		case "value_float":
			c.setConst(0, ir.NewF32(nil, []float32{a.F}))
		case "value_floats":
			c.setConst(0, ir.NewF32([]int{len(a.Floats)}, a.Floats))
		case "value_int":
			c.setConst(0, ir.NewI64(nil, []int64{a.I}))
		case "value_ints":
			c.setConst(0, ir.NewI64([]int{len(a.Ints)}, a.Ints))
		default:
			return unsupported("Constant attribute %s", a.Name)
		}
	}
	if c.outs[0] == nil {
		return fmt.Errorf("Constant has no value attribute")
	}
	return nil
}

func importConstantOfShape(c *nodeCtx) error {
	dims, err := c.ints(0, "shape")
	if err != nil {
		return err
	}
	shape := toInts(dims)
	n := ir.ShapeElems(shape)
	if n < 0 {
		return fmt.Errorf("shape %v is negative or overflows", dims)
	}
	fill := &ir.Tensor{Type: ir.Type{DType: ir.F32}, Raw: make([]byte, 4)}
	a, err := c.attr("value", AttrTensor)
	if err != nil {
		return err
	}
	if a != nil && a.T != nil {
		if fill, err = convertTensor(a.T, c.ext); err != nil {
			return err
		}
		if fill.Elems() != 1 {
			return fmt.Errorf("value has shape %v, want one element", fill.Shape)
		}
	}
	es := fill.DType.Size()
	raw := make([]byte, n*int64(es))
	if slices.ContainsFunc(fill.Raw, func(b byte) bool { return b != 0 }) {
		for i := int64(0); i < n; i++ {
			copy(raw[i*int64(es):], fill.Raw)
		}
	}
	c.setConst(0, &ir.Tensor{Type: ir.Type{DType: fill.DType, Shape: shape}, Raw: raw})
	return nil
}

// importShape folds Shape: every shape is static, so it is a constant.
func importShape(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	r := int64(xt.Rank())
	start, err := c.attrInt("start", 0)
	if err != nil {
		return err
	}
	end, err := c.attrInt("end", r)
	if err != nil {
		return err
	}
	clamp := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	start, end = clamp(start), clamp(end)
	var dims []int64
	for d := start; d < end; d++ {
		dims = append(dims, int64(xt.Shape[d]))
	}
	c.setConst(0, ir.NewI64([]int{len(dims)}, dims))
	return nil
}

// importGather folds Gather on constants. On a run-time tensor it handles
// constant indices that select one contiguous run (a slice).
func importGather(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	ax, err := c.axisAttr("axis", 0, xt.Rank())
	if err != nil {
		return err
	}
	idx, ok := c.constant(1)
	if !ok {
		return c.needConstant(1, "indices")
	}
	ids := idx.Int64s()
	dim := xt.Shape[ax]
	for i, v := range ids {
		if v < -int64(dim) || v >= int64(dim) {
			return fmt.Errorf("index %d out of range for dim %d of size %d", v, ax, dim)
		}
		if v < 0 {
			ids[i] = v + int64(dim)
		}
	}
	outShape := slices.Concat(xt.Shape[:ax], idx.Shape, xt.Shape[ax+1:])
	if data, ok := c.constant(0); ok {
		c.setConst(0, gatherConst(data, ax, ids, outShape))
		return nil
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			return unsupported("Gather of non-contiguous indices %v on a run-time tensor", ids)
		}
	}
	st, en, sp := make([]int, xt.Rank()), slices.Clone(xt.Shape), make([]int, xt.Rank())
	for d := range sp {
		sp[d] = 1
	}
	if len(ids) > 0 {
		st[ax], en[ax] = int(ids[0]), int(ids[len(ids)-1])+1
	} else {
		en[ax] = 0
	}
	if err := c.slice(0, 0, st, en, sp); err != nil {
		return err
	}
	sliced := c.outs[0].v
	if slices.Equal(sliced.Type.Shape, outShape) {
		return nil
	}
	v, err := c.emit(ir.OpReshape, []*ir.Value{sliced}, ir.Attrs{"shape": outShape})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func gatherConst(data *ir.Tensor, ax int, ids []int64, outShape []int) *ir.Tensor {
	es := data.DType.Size()
	outer := int(ir.ShapeElems(data.Shape[:ax]))
	inner := int(ir.ShapeElems(data.Shape[ax+1:])) * es
	dim := data.Shape[ax]
	raw := make([]byte, 0, outer*len(ids)*inner)
	for o := range outer {
		for _, id := range ids {
			src := (o*dim + int(id)) * inner
			raw = append(raw, data.Raw[src:src+inner]...)
		}
	}
	return &ir.Tensor{Type: ir.Type{DType: data.DType, Shape: outShape}, Raw: raw}
}

// importCast converts constants; on run-time values only a cast to the
// value's own dtype (a no-op) is supported.
func importCast(c *nodeCtx) error {
	to, err := c.attrInt("to", 0)
	if err != nil {
		return err
	}
	c.ignore("saturate", "round_mode")
	dt, err := dtypeOf(DataType(to))
	if err != nil {
		return err
	}
	if t, ok := c.constant(0); ok {
		c.setConst(0, castConst(t, dt))
		return nil
	}
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	if xt.DType != dt {
		return unsupported("Cast of a run-time %s tensor to %s", xt.DType, dt)
	}
	return c.alias(0, 0)
}

func castConst(t *ir.Tensor, dt ir.DType) *ir.Tensor {
	if t.DType == dt {
		return t
	}
	n := int(t.Elems())
	raw := make([]byte, n*dt.Size())
	if dt.IsFloat() {
		for i, v := range t.Float32s() {
			if dt == ir.F32 {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			} else {
				binary.LittleEndian.PutUint16(raw[2*i:], ir.FloatToHalf(v))
			}
		}
	} else {
		for i, v := range t.Int64s() {
			switch dt {
			case ir.I64:
				binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
			case ir.I32:
				binary.LittleEndian.PutUint32(raw[4*i:], uint32(int32(v)))
			case ir.Bool:
				if v != 0 {
					raw[i] = 1
				}
			}
		}
	}
	return &ir.Tensor{Type: ir.Type{DType: dt, Shape: slices.Clone(t.Shape)}, Raw: raw}
}

func importIdentity(c *nodeCtx) error { return c.alias(0, 0) }

// importDropout is the identity at inference; a training_mode input that is
// true at run time is not supported.
func importDropout(c *nodeCtx) error {
	c.ignore("ratio", "seed", "is_test")
	if c.has(2) {
		t, ok := c.constant(2)
		if !ok || slices.ContainsFunc(t.Raw, func(b byte) bool { return b != 0 }) {
			return unsupported("Dropout in training mode")
		}
	}
	return c.alias(0, 0)
}

// importRange folds Range on integer constants.
func importRange(c *nodeCtx) error {
	var v [3]int64
	for i := range v {
		x, err := c.ints(i, []string{"start", "limit", "delta"}[i])
		if err != nil {
			return err
		}
		if len(x) != 1 {
			return fmt.Errorf("input %d has %d values, want a scalar", i, len(x))
		}
		v[i] = x[0]
	}
	if v[2] == 0 {
		return fmt.Errorf("delta 0")
	}
	n := max(0, (v[1]-v[0]+v[2]-sign(v[2]))/v[2])
	if n > 1<<24 {
		return fmt.Errorf("range of %d values is too long", n)
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = v[0] + int64(i)*v[2]
	}
	c.setConst(0, ir.NewI64([]int{int(n)}, out))
	return nil
}

func sign(x int64) int64 {
	if x < 0 {
		return -1
	}
	return 1
}

// importExpand folds Expand on integer constants.
func importExpand(c *nodeCtx) error {
	t, ok := c.constant(0)
	if !ok || t.DType.IsFloat() {
		return unsupported("Expand of a run-time or float tensor")
	}
	dims, err := c.ints(1, "shape")
	if err != nil {
		return err
	}
	shape, err := ir.BroadcastShapes(t.Shape, toInts(dims))
	if err != nil {
		return err
	}
	c.setConst(0, ir.NewI64(shape, broadcastInts(t.Int64s(), t.Shape, shape)))
	return nil
}
