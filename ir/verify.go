package ir

import (
	"errors"
	"fmt"
	"slices"
)

// Verify checks the graph's invariants: every value defined once and before
// use, arity and attributes as the op table says, recorded types equal to
// the shape rule's, const data matching its type, outputs defined. The
// error lists every problem found, each naming its node.
func Verify(g *Graph) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	defined := map[*Value]bool{}
	names := map[string]bool{}
	define := func(v *Value, where string) {
		if names[v.Name] {
			bad("%s: %s defined twice", where, v)
		}
		names[v.Name] = true
		defined[v] = true
	}
	for _, v := range g.Inputs {
		if v.Def != nil {
			bad("graph input %s has a defining node", v)
		}
		if v.Type.Elems() < 0 {
			bad("graph input %s: shape %v is invalid", v, v.Type.Shape)
		}
		define(v, "graph input")
	}
	for _, n := range g.Nodes {
		if n.Out == nil || n.Op == nil {
			bad("node without op or output")
			continue
		}
		where := n.Describe()
		for i, in := range n.Inputs {
			if in == nil {
				bad("%s: input %d is nil", where, i)
				continue
			}
			if !defined[in] {
				bad("%s: input %d %s is not defined before use", where, i, in)
			}
		}
		if n.Out.Def != n {
			bad("%s: output's Def is another node", where)
		}
		verifyNode(n, func(err error) { bad("%s: %v", where, err) })
		define(n.Out, where)
	}
	for i, v := range g.Outputs {
		if !defined[v] {
			bad("graph output %d %s is not defined", i, v)
		}
	}
	verifyKernels(g, bad)
	verifyLayouts(g, bad)
	return errors.Join(errs...)
}

// verifyLayouts checks channels-last values: 4-D float outputs of a
// convolution, a max or average pool or an element-wise op that runs in
// either layout (IsLayoutElementwise), read only by convolutions (as their
// input), pools (global ones too) and such element-wise ops of the same
// layout and shape (or any, for a value of 1x1 pixels, the same memory in
// both layouts), never a graph output. Everything else reads NCHW.
func verifyLayouts(g *Graph, bad func(string, ...any)) {
	outputs := map[*Value]bool{}
	for _, v := range g.Outputs {
		outputs[v] = true
	}
	users := g.Users()
	for _, n := range g.Nodes {
		if n.Sched.Layout == "" {
			continue
		}
		if n.Sched.Layout != LayoutNHWC {
			bad("%s: layout %q, want %s or none", n.Describe(), n.Sched.Layout, LayoutNHWC)
			continue
		}
		if len(n.Out.Type.Shape) != 4 || !n.Out.Type.DType.IsFloat() || (n.Op != OpConv2D && !IsWindowPool(n) && !IsLayoutElementwise(n)) {
			bad("%s: channels-last output on a %s op, want a 4-D convolution, pool or same-shape element-wise output", n.Describe(), n.Op.Name)
		}
		if outputs[n.Out] {
			bad("%s: a graph output in channels-last layout", n.Describe())
		}
		for _, u := range users[n.Out] {
			switch {
			case u.Op == OpConv2D && u.Inputs[0] == n.Out, IsGlobalPool(u), IsWindowPool(u):
			case IsLayoutElementwise(u) && u.Sched.Layout == n.Sched.Layout && slices.Equal(n.Out.Type.Shape, u.Out.Type.Shape):
			case IsLayoutElementwise(u) && n.Out.Type.Shape[2] == 1 && n.Out.Type.Shape[3] == 1: // the same memory in both layouts
			default:
				bad("%s: channels-last, read by %s, which reads NCHW", n.Describe(), u.Describe())
			}
		}
	}
}

// IsWindowPool reports a max or average pooling over windows, which reads
// and writes channels last as readily as NCHW.
func IsWindowPool(n *Node) bool { return n.Op == OpMaxPool || n.Op == OpAvgPool }

// IsGlobalPool reports a global average or max pooling, which reads a
// channels-last input as readily as an NCHW one.
func IsGlobalPool(n *Node) bool { return n.Op == OpGlobalAvgPool || n.Op == OpGlobalMaxPool }

// IsLayoutElementwise reports an element-wise op that runs in either
// layout: its operands have its output's shape (and then its layout) or
// broadcast per image and channel ([N or 1, C or 1, 1, 1]) or are scalars,
// read by logical coordinates (for such shapes NCHW and channels-last
// memory coincide).
func IsLayoutElementwise(n *Node) bool {
	if n.Op.Class != ClassElementwise || (n.Op.Unary == nil && n.Op.Binary == nil) {
		return false
	}
	for _, in := range n.Inputs {
		if in.Type.Elems() != 1 && !slices.Equal(in.Type.Shape, n.Out.Type.Shape) && !IsChannelBroadcast(in.Type.Shape, n.Out.Type.Shape) {
			return false
		}
	}
	return true
}

// IsChannelBroadcast reports a 4-D operand shape that broadcasts over the
// spatial dimensions of out: [N or 1, C or 1, 1, 1].
func IsChannelBroadcast(shape, out []int) bool {
	return len(shape) == 4 && len(out) == 4 && shape[2] == 1 && shape[3] == 1 &&
		(shape[0] == 1 || shape[0] == out[0]) && (shape[1] == 1 || shape[1] == out[1])
}

// verifyKernels checks fused kernels: only a kernel's last node (its root)
// may be read outside it or be a graph output, so every other member stays
// on chip and the kernel can run where its root stands; tiles go on GEMM
// anchors only.
func verifyKernels(g *Graph, bad func(string, ...any)) {
	root := map[int]*Node{}
	for _, n := range g.Nodes {
		if n.Sched.Kernel != 0 {
			root[n.Sched.Kernel] = n
		}
		if (len(n.Sched.Tile) > 0 || n.Sched.SplitK > 1) && n.Op.Class != ClassGemm && n.Op.Class != ClassConv {
			bad("%s: a tile schedule on a %s op, want it on a convolution or matrix product", n.Describe(), n.Op.Class)
		}
	}
	if len(root) == 0 {
		return
	}
	outputs := map[*Value]bool{}
	for _, v := range g.Outputs {
		outputs[v] = true
	}
	users := g.Users()
	for _, n := range g.Nodes {
		k := n.Sched.Kernel
		if k == 0 || root[k] == n {
			continue
		}
		if outputs[n.Out] {
			bad("%s: is a graph output inside kernel k%d but not its last node", n.Describe(), k)
		}
		for _, u := range users[n.Out] {
			if u.Sched.Kernel != k {
				bad("%s: inside kernel k%d, read by %s outside it", n.Describe(), k, u.Describe())
			}
		}
	}
}

func verifyNode(n *Node, bad func(error)) {
	if n.Op == OpConst {
		t := n.Out.Type
		switch {
		case len(n.Inputs) != 0:
			bad(fmt.Errorf("const has %d inputs, want 0", len(n.Inputs)))
		case n.Const == nil && n.Blob == "":
			bad(fmt.Errorf("const has neither data nor a blob name"))
		case n.Const != nil && !n.Const.Type.Equal(t):
			bad(fmt.Errorf("const data is %s, want %s", n.Const.Type, t))
		case n.Const != nil && int64(len(n.Const.Raw)) != t.Bytes():
			bad(fmt.Errorf("const data has %d bytes, want %d", len(n.Const.Raw), t.Bytes()))
		}
		return
	}
	if err := n.Op.checkArity(len(n.Inputs)); err != nil {
		bad(err)
		return
	}
	if err := n.Op.checkAttrs(n.Attrs); err != nil {
		bad(err)
		return
	}
	t, err := n.Op.Infer(n)
	if err != nil {
		bad(err)
		return
	}
	if !t.Equal(n.Out.Type) {
		bad(fmt.Errorf("got type %s, want %s", n.Out.Type, t))
	}
}
