package onnx

import (
	"fmt"
	"slices"

	"cnnc/ir"
)

// stridedCopy builds a constant of outShape whose element at index i is
// t's element at offset + sum(i[d] * srcStrides[d]), for any element size.
// It folds Slice, Transpose and Gather on constants.
func stridedCopy(t *ir.Tensor, outShape []int, offset int, srcStrides []int) *ir.Tensor {
	es := t.DType.Size()
	n := int(ir.ShapeElems(outShape))
	raw := make([]byte, n*es)
	idx := make([]int, len(outShape))
	for i := range n {
		src := offset
		for d, x := range idx {
			src += x * srcStrides[d]
		}
		copy(raw[i*es:(i+1)*es], t.Raw[src*es:(src+1)*es])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < outShape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return &ir.Tensor{Type: ir.Type{DType: t.DType, Shape: slices.Clone(outShape)}, Raw: raw}
}

// importReshape resolves the target shape (0 copies the input dim unless
// allowzero, -1 is inferred). With --batch overriding a fixed batch, a
// leading dim equal to the old batch follows the new one.
func importReshape(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	var spec []int64
	if c.opset < 5 {
		spec, _, err = c.attrInts("shape")
	} else {
		spec, err = c.ints(1, "shape")
	}
	if err != nil {
		return err
	}
	allowZero, err := c.attrInt("allowzero", 0)
	if err != nil {
		return err
	}
	shape := toInts(spec)
	if c.batchFrom > 0 && len(shape) > 0 && shape[0] == c.batchFrom && xt.Rank() > 0 && xt.Shape[0] == c.batchTo {
		shape[0] = c.batchTo
	}
	infer := -1
	known := int64(1)
	for i, d := range shape {
		switch {
		case d == 0 && allowZero == 0:
			if i >= xt.Rank() {
				return fmt.Errorf("shape %v copies dim %d of an input of shape %v", spec, i, xt.Shape)
			}
			shape[i] = xt.Shape[i]
		case d == -1:
			if infer >= 0 {
				return fmt.Errorf("shape %v has more than one -1", spec)
			}
			infer = i
			continue
		case d < 0:
			return fmt.Errorf("shape %v has dim %d, want -1, 0 or positive", spec, d)
		}
		if known = known * int64(shape[i]); known > ir.MaxElements {
			return fmt.Errorf("shape %v overflows", spec)
		}
	}
	if infer >= 0 {
		if known == 0 || xt.Elems()%known != 0 {
			return fmt.Errorf("cannot reshape %v to %v", xt.Shape, spec)
		}
		shape[infer] = int(xt.Elems() / known)
	}
	if ir.ShapeElems(shape) != xt.Elems() {
		return fmt.Errorf("cannot reshape %v (%d elements) to %v", xt.Shape, xt.Elems(), spec)
	}
	return c.reshape(0, shape)
}

func importFlatten(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	axis, err := c.attrInt("axis", 1)
	if err != nil {
		return err
	}
	if axis < 0 {
		axis += int64(xt.Rank())
	}
	if axis < 0 || axis > int64(xt.Rank()) {
		return fmt.Errorf("axis %d out of range for rank %d", axis, xt.Rank())
	}
	outer := int(ir.ShapeElems(xt.Shape[:axis]))
	return c.reshape(0, []int{outer, int(ir.ShapeElems(xt.Shape[axis:]))})
}

// axesArg reads axes given as an attribute before opset 13 and as input 1 after.
func (c *nodeCtx) axesArg(since int64) ([]int64, bool, error) {
	if c.opset < since {
		return c.attrInts("axes")
	}
	if !c.has(1) {
		return nil, false, nil
	}
	a, err := c.ints(1, "axes")
	return a, true, err
}

func importSqueeze(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	axes, given, err := c.axesArg(13)
	if err != nil {
		return err
	}
	drop := make([]bool, xt.Rank())
	for _, a := range axes {
		ax, err := normAxis(a, xt.Rank(), "axis")
		if err != nil {
			return err
		}
		if xt.Shape[ax] != 1 {
			return fmt.Errorf("cannot squeeze axis %d of shape %v: its size is not 1", a, xt.Shape)
		}
		drop[ax] = true
	}
	var shape []int
	for d, s := range xt.Shape {
		if !drop[d] && (given || s != 1) {
			shape = append(shape, s)
		}
	}
	return c.reshape(0, shape)
}

func importUnsqueeze(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	axes, _, err := c.axesArg(13)
	if err != nil {
		return err
	}
	rank := xt.Rank() + len(axes)
	ones := make([]bool, rank)
	for _, a := range axes {
		ax, err := normAxis(a, rank, "axis")
		if err != nil {
			return err
		}
		if ones[ax] {
			return fmt.Errorf("axis %d is listed twice", a)
		}
		ones[ax] = true
	}
	shape := make([]int, 0, rank)
	j := 0
	for d := range rank {
		if ones[d] {
			shape = append(shape, 1)
		} else {
			shape = append(shape, xt.Shape[j])
			j++
		}
	}
	return c.reshape(0, shape)
}

func importTranspose(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	p, ok, err := c.attrInts("perm")
	if err != nil {
		return err
	}
	perm := make([]int, xt.Rank())
	for i := range perm {
		perm[i] = xt.Rank() - 1 - i
	}
	if ok {
		perm = toInts(p)
	}
	if t, isConst := c.constant(0); isConst {
		if len(perm) != t.Rank() {
			return fmt.Errorf("perm %v for rank %d", perm, t.Rank())
		}
		st := ir.Strides(t.Shape)
		out, src := make([]int, len(perm)), make([]int, len(perm))
		for i, q := range perm {
			if q < 0 || q >= len(perm) {
				return fmt.Errorf("perm %v is not a permutation", perm)
			}
			out[i], src[i] = t.Shape[q], st[q]
		}
		c.setConst(0, stridedCopy(t, out, 0, src))
		return nil
	}
	x, err := c.value(0)
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpTranspose, []*ir.Value{x}, ir.Attrs{"perm": perm})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func importConcat(c *nodeCtx) error {
	axis, err := c.attrInt("axis", 0)
	if err != nil {
		return err
	}
	if c.opset < 4 {
		axis = 1
	}
	first, err := c.typeOf(0)
	if err != nil {
		return err
	}
	ax, err := normAxis(axis, first.Rank(), "axis")
	if err != nil {
		return err
	}
	if c.allConstant() {
		return c.foldConcat(ax)
	}
	ins, err := c.values(0)
	if err != nil {
		return err
	}
	if len(ins) == 1 {
		c.setValue(0, ins[0])
		return nil
	}
	v, err := c.emit(ir.OpConcat, ins, ir.Attrs{"axis": ax})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func (c *nodeCtx) foldConcat(ax int) error {
	var parts []*ir.Tensor
	for i := range c.n.Inputs {
		if t, ok := c.constant(i); ok {
			parts = append(parts, t)
		}
	}
	shape := slices.Clone(parts[0].Shape)
	shape[ax] = 0
	for _, p := range parts {
		if p.DType != parts[0].DType || p.Rank() != len(shape) {
			return fmt.Errorf("cannot concatenate %s and %s", parts[0].Type, p.Type)
		}
		shape[ax] += p.Shape[ax]
	}
	es := parts[0].DType.Size()
	outer := int(ir.ShapeElems(shape[:ax]))
	var raw []byte
	for o := range outer {
		for _, p := range parts {
			chunk := int(ir.ShapeElems(p.Shape[ax:])) * es
			raw = append(raw, p.Raw[o*chunk:(o+1)*chunk]...)
		}
	}
	c.setConst(0, &ir.Tensor{Type: ir.Type{DType: parts[0].DType, Shape: shape}, Raw: raw})
	return nil
}

// sliceAxis normalizes one axis of a Slice the way ONNX does: negative
// indices count from the end, then clamp to the dim by the step's sign.
func sliceAxis(dim int, start, end, step int) (int, int) {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		return min(max(start, 0), dim), min(max(end, 0), dim)
	}
	return min(max(start, 0), dim-1), min(max(end, -1), dim-1)
}

// slice emits (or folds) a slice of input i; starts/ends/steps are
// already normalized and full-rank.
func (c *nodeCtx) slice(i, out int, starts, ends, steps []int) error {
	xt, err := c.typeOf(i)
	if err != nil {
		return err
	}
	if t, ok := c.constant(i); ok {
		st := ir.Strides(t.Shape)
		shape, src := make([]int, len(st)), make([]int, len(st))
		off := 0
		for d := range st {
			shape[d] = ir.SliceLen(starts[d], ends[d], steps[d])
			src[d] = st[d] * steps[d]
			off += starts[d] * st[d]
		}
		c.setConst(out, stridedCopy(t, shape, off, src))
		return nil
	}
	x, err := c.value(i)
	if err != nil {
		return err
	}
	full := true
	for d := range starts {
		full = full && starts[d] == 0 && ends[d] == xt.Shape[d] && steps[d] == 1
	}
	if full {
		c.setValue(out, x)
		return nil
	}
	v, err := c.emit(ir.OpSlice, []*ir.Value{x}, ir.Attrs{"starts": starts, "ends": ends, "steps": steps})
	if err != nil {
		return err
	}
	c.setValue(out, v)
	return nil
}

func importSlice(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	var starts, ends, axes, steps []int64
	if c.opset < 10 {
		if starts, _, err = c.attrInts("starts"); err == nil {
			if ends, _, err = c.attrInts("ends"); err == nil {
				axes, _, err = c.attrInts("axes")
			}
		}
	} else {
		if starts, err = c.ints(1, "starts"); err == nil {
			ends, err = c.ints(2, "ends")
		}
		if err == nil && c.has(3) {
			axes, err = c.ints(3, "axes")
		}
		if err == nil && c.has(4) {
			steps, err = c.ints(4, "steps")
		}
	}
	if err != nil {
		return err
	}
	if len(ends) != len(starts) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return fmt.Errorf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	r := xt.Rank()
	st, en, sp := make([]int, r), slices.Clone(xt.Shape), make([]int, r)
	for d := range sp {
		sp[d] = 1
	}
	seen := make([]bool, r)
	s64, e64 := toInts(starts), toInts(ends)
	for k := range starts {
		ax := k
		if axes != nil {
			if ax, err = normAxis(axes[k], r, "axis"); err != nil {
				return err
			}
		}
		if ax >= r || seen[ax] {
			return fmt.Errorf("axis %d is out of range or listed twice", ax)
		}
		seen[ax] = true
		step := 1
		if steps != nil {
			step = toInts(steps[k : k+1])[0]
		}
		if step == 0 {
			return fmt.Errorf("step 0 on axis %d", ax)
		}
		sp[ax] = step
		st[ax], en[ax] = sliceAxis(xt.Shape[ax], s64[k], e64[k], step)
	}
	return c.slice(0, 0, st, en, sp)
}

func importSplit(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	ax, err := c.axisAttr("axis", 0, xt.Rank())
	if err != nil {
		return err
	}
	var sizes []int64
	if c.opset < 13 {
		sizes, _, err = c.attrInts("split")
	} else if c.has(1) {
		sizes, err = c.ints(1, "split")
	}
	if err != nil {
		return err
	}
	parts, err := c.attrInt("num_outputs", int64(len(c.n.Outputs)))
	if err != nil {
		return err
	}
	dim := xt.Shape[ax]
	if sizes == nil {
		if parts < 1 || int(parts) != len(c.n.Outputs) {
			return fmt.Errorf("num_outputs %d with %d outputs", parts, len(c.n.Outputs))
		}
		chunk := (dim + int(parts) - 1) / int(parts)
		for i := range int(parts) {
			sizes = append(sizes, int64(max(0, min(chunk, dim-i*chunk))))
		}
	}
	if len(sizes) != len(c.n.Outputs) {
		return fmt.Errorf("split %v has %d sizes for %d outputs", sizes, len(sizes), len(c.n.Outputs))
	}
	total := int64(0)
	for _, s := range sizes {
		if s < 0 {
			return fmt.Errorf("split %v has a negative size", sizes)
		}
		total += s
	}
	if total != int64(dim) {
		return fmt.Errorf("split %v sums to %d, want dim %d of %v", sizes, total, dim, xt.Shape)
	}
	off := 0
	for i, s := range sizes {
		st, en, sp := make([]int, xt.Rank()), slices.Clone(xt.Shape), make([]int, xt.Rank())
		for d := range sp {
			sp[d] = 1
		}
		st[ax], en[ax] = off, off+int(s)
		off += int(s)
		if err := c.slice(0, i, st, en, sp); err != nil {
			return err
		}
	}
	return nil
}

// importPad imports constant-mode Pad; pads and value are attributes
// before opset 11 and inputs after, with optional axes from opset 18.
func importPad(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	mode, err := c.attrString("mode", "constant")
	if err != nil {
		return err
	}
	if mode != "constant" {
		return unsupported("Pad mode %q (cnnc pads with a constant)", mode)
	}
	var pads []int64
	value := 0.0
	if c.opset < 11 {
		if pads, _, err = c.attrInts("pads"); err != nil {
			return err
		}
		if value, err = c.attrFloat("value", 0); err != nil {
			return err
		}
	} else {
		if pads, err = c.ints(1, "pads"); err != nil {
			return err
		}
		if c.has(2) {
			if value, err = c.scalarFloat(2, "constant_value"); err != nil {
				return err
			}
		}
	}
	r := xt.Rank()
	full := make([]int, 2*r)
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if c.opset >= 18 && c.has(3) {
		a, err := c.ints(3, "axes")
		if err != nil {
			return err
		}
		if axes, err = normAxesOrdered(a, r); err != nil {
			return err
		}
	}
	if len(pads) != 2*len(axes) {
		return fmt.Errorf("pads %v, want %d values", pads, 2*len(axes))
	}
	p := toInts(pads)
	for k, ax := range axes {
		full[ax], full[ax+r] = p[k], p[k+len(axes)]
	}
	x, err := c.value(0)
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpPad, []*ir.Value{x}, ir.Attrs{"pads": full, "value": value})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

// normAxesOrdered normalizes axes, keeping their order.
func normAxesOrdered(axes []int64, rank int) ([]int, error) {
	out := make([]int, len(axes))
	for i, a := range axes {
		n, err := normAxis(a, rank, "axis")
		if err != nil {
			return nil, err
		}
		if slices.Contains(out[:i], n) {
			return nil, fmt.Errorf("axis %d is listed twice", a)
		}
		out[i] = n
	}
	return out, nil
}
