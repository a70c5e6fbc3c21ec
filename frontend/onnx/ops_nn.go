package onnx

import (
	"fmt"
	"slices"

	"cnnc/ir"
)

// window reads the attributes shared by Conv and the pools: kernel, strides,
// dilations and pads resolved from auto_pad, for a rank-4 input.
type window struct {
	kernel, strides, dilations, pads []int
}

func (c *nodeCtx) readWindow(x ir.Type, kernel []int) (window, error) {
	sp := x.Rank() - 2 // spatial dims: 1 or 2
	ones := func(n, v int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	w := window{kernel: kernel, strides: ones(sp, 1), dilations: ones(sp, 1), pads: ones(2*sp, 0)}
	if ks, ok, err := c.attrInts("kernel_shape"); err != nil {
		return w, err
	} else if ok {
		if kernel != nil && !slices.Equal(toInts(ks), kernel) {
			return w, fmt.Errorf("kernel_shape %v does not match the weight's %v", ks, kernel)
		}
		w.kernel = toInts(ks)
	}
	if len(w.kernel) != sp {
		return w, fmt.Errorf("kernel_shape %v, want %d values", w.kernel, sp)
	}
	for _, a := range []struct {
		name string
		dst  *[]int
		n    int
	}{{"strides", &w.strides, sp}, {"dilations", &w.dilations, sp}, {"pads", &w.pads, 2 * sp}} {
		v, ok, err := c.attrInts(a.name)
		if err != nil {
			return w, err
		}
		if !ok {
			continue
		}
		if len(v) != a.n {
			return w, fmt.Errorf("attribute %s has %d values, want %d", a.name, len(v), a.n)
		}
		*a.dst = toInts(v)
	}
	mode, err := c.attrString("auto_pad", "NOTSET")
	if err != nil {
		return w, err
	}
	switch mode {
	case "NOTSET":
	case "VALID":
		w.pads = ones(2*sp, 0)
	case "SAME_UPPER", "SAME_LOWER":
		for i := range sp {
			in, s := x.Shape[2+i], w.strides[i]
			if s < 1 {
				return w, fmt.Errorf("stride %d, want at least 1", s)
			}
			out := (in + s - 1) / s
			total := max(0, (out-1)*s+w.dilations[i]*(w.kernel[i]-1)+1-in)
			lo := total / 2
			if mode == "SAME_LOWER" {
				lo = total - total/2
			}
			w.pads[i], w.pads[i+sp] = lo, total-lo
		}
	default:
		return w, unsupported("auto_pad %q", mode)
	}
	for _, p := range w.pads {
		if p < 0 {
			return w, fmt.Errorf("pads %v, want non-negative values", w.pads)
		}
	}
	if sp == 1 { // 1-D windows run as 2-D ones of height 1
		w.kernel = []int{1, w.kernel[0]}
		w.strides = []int{1, w.strides[0]}
		w.dilations = []int{1, w.dilations[0]}
		w.pads = []int{0, w.pads[0], 0, w.pads[1]}
	}
	return w, nil
}

// wantSpatial accepts 3-D (1-D windows) and 4-D (2-D windows) tensors.
func wantSpatial(t ir.Type, what string) error {
	if t.Rank() != 3 && t.Rank() != 4 {
		return unsupported("%s has shape %v: cnnc handles 1-D and 2-D convolution and pooling (3-D or 4-D tensors)", what, t.Shape)
	}
	return nil
}

// as2D returns input i as a 4-D value, inserting a height of 1 into a 3-D one.
func (c *nodeCtx) as2D(i int) (*ir.Value, error) {
	v, err := c.value(i)
	if err != nil || v.Type.Rank() != 3 {
		return v, err
	}
	s := v.Type.Shape
	return c.emit(ir.OpReshape, []*ir.Value{v}, ir.Attrs{"shape": []int{s[0], s[1], 1, s[2]}})
}

// setSpatial sets output 0 to v, dropping the height of 1 again if the
// node's input was 3-D.
func (c *nodeCtx) setSpatial(v *ir.Value, rank int) error {
	if rank == 3 {
		s := v.Type.Shape
		var err error
		if v, err = c.emit(ir.OpReshape, []*ir.Value{v}, ir.Attrs{"shape": []int{s[0], s[1], s[3]}}); err != nil {
			return err
		}
	}
	c.setValue(0, v)
	return nil
}

func importConv(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	wt, err := c.typeOf(1)
	if err != nil {
		return err
	}
	if err := wantSpatial(xt, "the input"); err != nil {
		return err
	}
	if wt.Rank() != xt.Rank() {
		return fmt.Errorf("weight has shape %v, want rank %d like the input", wt.Shape, xt.Rank())
	}
	w, err := c.readWindow(xt, wt.Shape[2:])
	if err != nil {
		return err
	}
	group, err := c.attrInt("group", 1)
	if err != nil {
		return err
	}
	x, err := c.as2D(0)
	if err != nil {
		return err
	}
	wv, err := c.as2D(1)
	if err != nil {
		return err
	}
	ins := []*ir.Value{x, wv}
	if c.has(2) {
		b, err := c.value(2)
		if err != nil {
			return err
		}
		ins = append(ins, b)
	}
	v, err := c.emit(ir.OpConv2D, ins, ir.Attrs{"strides": w.strides, "pads": w.pads, "dilations": w.dilations, "group": int(group)})
	if err != nil {
		return err
	}
	return c.setSpatial(v, xt.Rank())
}

func importPool(op *ir.OpInfo) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		xt, err := c.typeOf(0)
		if err != nil {
			return err
		}
		if err := wantSpatial(xt, "the input"); err != nil {
			return err
		}
		w, err := c.readWindow(xt, nil)
		if err != nil {
			return err
		}
		ceil, err := c.attrInt("ceil_mode", 0)
		if err != nil {
			return err
		}
		attrs := ir.Attrs{"kernel": w.kernel, "strides": w.strides, "pads": w.pads, "dilations": w.dilations, "ceil_mode": int(ceil)}
		if op == ir.OpAvgPool {
			cip, err := c.attrInt("count_include_pad", 0)
			if err != nil {
				return err
			}
			attrs["count_include_pad"] = int(cip)
		} else if order, err := c.attrInt("storage_order", 0); err != nil {
			return err
		} else if order != 0 {
			return unsupported("storage_order %d", order)
		}
		x, err := c.as2D(0)
		if err != nil {
			return err
		}
		v, err := c.emit(op, []*ir.Value{x}, attrs)
		if err != nil {
			return err
		}
		return c.setSpatial(v, xt.Rank())
	}
}

// importSimple imports an op whose inputs map one to one onto an IR op
// with no attributes.
func importSimple(op *ir.OpInfo) func(c *nodeCtx) error {
	return func(c *nodeCtx) error {
		ins, err := c.values(0)
		if err != nil {
			return err
		}
		v, err := c.emit(op, ins, nil)
		if err != nil {
			return err
		}
		c.setValue(0, v)
		return nil
	}
}

func importBatchNorm(c *nodeCtx) error {
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	if train, err := c.attrInt("training_mode", 0); err != nil {
		return err
	} else if train != 0 {
		return unsupported("training_mode=1 (cnnc compiles inference)")
	}
	if spatial, err := c.attrInt("spatial", 1); err != nil {
		return err
	} else if spatial != 1 {
		return unsupported("spatial=%d", spatial)
	}
	c.ignore("momentum", "is_test", "consumed_inputs")
	ins, err := c.values(0)
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpBatchNorm, ins, ir.Attrs{"epsilon": eps})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func importLayerNorm(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	ax, err := c.axisAttr("axis", -1, xt.Rank())
	if err != nil {
		return err
	}
	eps, err := c.attrFloat("epsilon", 1e-5)
	if err != nil {
		return err
	}
	c.ignore("stash_type")
	ins, err := c.values(0)
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpLayerNorm, ins, ir.Attrs{"axis": ax, "epsilon": eps})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func importLRN(c *nodeCtx) error {
	size, err := c.attrInt("size", 0)
	if err != nil {
		return err
	}
	attrs := ir.Attrs{"size": int(size)}
	for _, a := range []struct {
		name string
		def  float64
	}{{"alpha", 1e-4}, {"beta", 0.75}, {"bias", 1}} {
		if attrs[a.name], err = c.attrFloat(a.name, a.def); err != nil {
			return err
		}
	}
	x, err := c.value(0)
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpLRN, []*ir.Value{x}, attrs)
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func importGemm(c *nodeCtx) error {
	attrs := ir.Attrs{}
	for _, a := range []string{"alpha", "beta"} {
		f, err := c.attrFloat(a, 1)
		if err != nil {
			return err
		}
		attrs[a] = f
	}
	for _, a := range []string{"transA", "transB"} {
		t, err := c.attrInt(a, 0)
		if err != nil {
			return err
		}
		attrs[map[string]string{"transA": "trans_a", "transB": "trans_b"}[a]] = min(int(t), 1)
	}
	c.ignore("broadcast")
	ins, err := c.values(0)
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpGemm, ins, attrs)
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

// importSoftmax imports Softmax. Before opset 13 the op flattened the input
// to 2-D at axis and normalized over everything from axis on; that form is
// a reshape around a one-axis softmax.
func importSoftmax(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	def := int64(-1)
	if c.opset < 13 {
		def = 1
	}
	axis, err := c.attrInt("axis", def)
	if err != nil {
		return err
	}
	ax, err := normAxis(axis, max(xt.Rank(), 1), "axis")
	if err != nil {
		return err
	}
	x, err := c.value(0)
	if err != nil {
		return err
	}
	if c.opset >= 13 || ax == xt.Rank()-1 {
		v, err := c.emit(ir.OpSoftmax, []*ir.Value{x}, ir.Attrs{"axis": ax})
		if err != nil {
			return err
		}
		c.setValue(0, v)
		return nil
	}
	outer := int(ir.ShapeElems(xt.Shape[:ax]))
	flat, err := c.emit(ir.OpReshape, []*ir.Value{x}, ir.Attrs{"shape": []int{outer, int(xt.Elems()) / max(outer, 1)}})
	if err != nil {
		return err
	}
	sm, err := c.emit(ir.OpSoftmax, []*ir.Value{flat}, ir.Attrs{"axis": 1})
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpReshape, []*ir.Value{sm}, ir.Attrs{"shape": slices.Clone(xt.Shape)})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

func importReduceMean(c *nodeCtx) error {
	xt, err := c.typeOf(0)
	if err != nil {
		return err
	}
	keep, err := c.attrInt("keepdims", 1)
	if err != nil {
		return err
	}
	noop, err := c.attrInt("noop_with_empty_axes", 0)
	if err != nil {
		return err
	}
	var axes []int64
	if c.opset < 18 {
		axes, _, err = c.attrInts("axes")
	} else if c.has(1) {
		axes, err = c.ints(1, "axes")
	}
	if err != nil {
		return err
	}
	if len(axes) == 0 && noop != 0 {
		return c.alias(0, 0)
	}
	norm, err := normAxes(axes, xt.Rank())
	if err != nil {
		return err
	}
	x, err := c.value(0)
	if err != nil {
		return err
	}
	v, err := c.emit(ir.OpReduceMean, []*ir.Value{x}, ir.Attrs{"axes": norm, "keepdims": min(int(keep), 1)})
	if err != nil {
		return err
	}
	c.setValue(0, v)
	return nil
}

// normAxes normalizes, sorts and dedups axes; none means all.
func normAxes(axes []int64, rank int) ([]int, error) {
	if len(axes) == 0 {
		all := make([]int, rank)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := make([]int, 0, len(axes))
	for _, a := range axes {
		n, err := normAxis(a, rank, "axis")
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("axis %d is listed twice", a)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
