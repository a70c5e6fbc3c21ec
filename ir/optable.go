package ir

import (
	"fmt"
	"math"
	"slices"
)

// OpClass groups ops by the kind of kernel that runs them; the cost model
// and reports use it.
type OpClass uint8

// Op classes.
const (
	ClassConst OpClass = iota
	ClassConv
	ClassGemm
	ClassPool
	ClassElementwise
	ClassReduction
	ClassNormalization
	ClassLayout
)

var classNames = [...]string{"const", "conv", "gemm", "pool", "elementwise", "reduction", "normalization", "layout"}

func (c OpClass) String() string { return classNames[c] }

// AttrKind is the Go type of an attribute value.
type AttrKind uint8

// Attribute kinds and the Go types that hold them.
const (
	AttrInt    AttrKind = iota // int
	AttrFloat                  // float64
	AttrString                 // string
	AttrInts                   // []int
	AttrFloats                 // []float64
)

// AttrSpec declares one attribute of an op. A nil Default means required.
type AttrSpec struct {
	Name    string
	Kind    AttrKind
	Default any
}

// OpInfo is one row of the op table: everything cnnc knows about an op.
type OpInfo struct {
	Name  string
	Class OpClass
	MinIn int // fewest inputs
	MaxIn int // most inputs; -1 for any number
	Attrs []AttrSpec

	// Infer is the shape rule: the output type from the inputs and attrs,
	// or an error that says what was expected.
	Infer func(n *Node) (Type, error)
	// MACs counts multiply-accumulates (model FLOPs are twice this); nil
	// means the op counts zero toward model FLOPs.
	MACs func(n *Node) int64
	// View marks ops that only reinterpret their input (no bytes moved).
	View bool
	// Unary is the element-wise function of a one-input element-wise op,
	// evaluated in float64; Binary likewise for two inputs.
	Unary  func(x float64, n *Node) float64
	Binary func(a, b float64) float64
}

func (op *OpInfo) attrSpec(name string) (AttrSpec, bool) {
	for _, a := range op.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	return AttrSpec{}, false
}

func (op *OpInfo) withDefaults(a Attrs) Attrs {
	out := Attrs{}
	for k, v := range a {
		out[k] = v
	}
	for _, s := range op.Attrs {
		if _, ok := out[s.Name]; !ok && s.Default != nil {
			out[s.Name] = cloneAttr(s.Default)
		}
	}
	return out
}

func cloneAttr(v any) any {
	switch x := v.(type) {
	case []int:
		return slices.Clone(x)
	case []float64:
		return slices.Clone(x)
	}
	return v
}

func (op *OpInfo) checkArity(n int) error {
	if n < op.MinIn || (op.MaxIn >= 0 && n > op.MaxIn) {
		switch {
		case op.MaxIn < 0:
			return fmt.Errorf("%s: got %d inputs, want at least %d", op.Name, n, op.MinIn)
		case op.MinIn == op.MaxIn:
			return fmt.Errorf("%s: got %d inputs, want %d", op.Name, n, op.MinIn)
		default:
			return fmt.Errorf("%s: got %d inputs, want %d to %d", op.Name, n, op.MinIn, op.MaxIn)
		}
	}
	return nil
}

func (op *OpInfo) checkAttrs(a Attrs) error {
	for _, s := range op.Attrs {
		v, ok := a[s.Name]
		if !ok {
			return fmt.Errorf("%s: missing attribute %s", op.Name, s.Name)
		}
		good := false
		switch s.Kind {
		case AttrInt:
			_, good = v.(int)
		case AttrFloat:
			_, good = v.(float64)
		case AttrString:
			_, good = v.(string)
		case AttrInts:
			_, good = v.([]int)
		case AttrFloats:
			_, good = v.([]float64)
		}
		if !good {
			return fmt.Errorf("%s: attribute %s has type %T, want %s", op.Name, s.Name, v, attrKindNames[s.Kind])
		}
	}
	for k := range a {
		if _, ok := op.attrSpec(k); !ok {
			return fmt.Errorf("%s: unknown attribute %s", op.Name, k)
		}
	}
	return nil
}

var attrKindNames = [...]string{"int", "float", "string", "int list", "float list"}

// FLOPs is the node's model FLOPs: 2 x multiply-accumulates of convolutions
// and matrix products, zero for everything else.
func (n *Node) FLOPs() int64 {
	if n.Op.MACs == nil {
		return 0
	}
	return 2 * n.Op.MACs(n)
}

// MinBytes is the traffic of the node if each input (weights included) and
// the output moved once: the floor of its memory time.
func (n *Node) MinBytes() int64 {
	if n.Op == OpConst || n.Op.View {
		return 0
	}
	b := n.Out.Type.Bytes()
	seen := map[*Value]bool{}
	for _, in := range n.Inputs {
		if !seen[in] {
			seen[in] = true
			b += n.ReadBytes(in)
		}
	}
	return b
}

// ReadBytes is the part of input in that n must read: all of it, but for
// a convolution's data input whose windows skip rows (a stride longer
// than the window, as in a strided 1x1) only the rows some window
// covers, and in a channels-last input of at least 32 bytes a pixel (a
// sector) only the columns too.
func (n *Node) ReadBytes(in *Value) int64 {
	full := in.Type.Bytes()
	if n.Op != OpConv2D || n.Inputs[0] != in || in.Type.Rank() != 4 {
		return full
	}
	x, w, y := in.Type.Shape, n.Inputs[1].Type.Shape, n.Out.Type.Shape
	s, d, p := n.Ints("strides"), n.Ints("dilations"), n.Ints("pads")
	rows, cols := covered(x[2], y[2], w[2], s[0], d[0], p[0]), x[3]
	if LayoutOf(in) == LayoutNHWC && int64(x[1])*int64(in.Type.DType.Size()) >= 32 {
		cols = covered(x[3], y[3], w[3], s[1], d[1], p[1])
	}
	return full / int64(x[2]*x[3]) * int64(rows*cols)
}

// covered counts the positions of an axis of size that out windows of k
// taps (dilation d), stride s apart from -pad, touch.
func covered(size, out, k, s, d, pad int) int {
	hit := make([]bool, size)
	n := 0
	for o := range out {
		for t := range k {
			if i := o*s - pad + t*d; i >= 0 && i < size && !hit[i] {
				hit[i] = true
				n++
			}
		}
	}
	return n
}

// Params is the number of weight elements a node reads from constants.
func (n *Node) Params() int64 {
	var p int64
	for _, in := range n.Inputs {
		if in.Def != nil && in.Def.Op == OpConst && in.Type.DType.IsFloat() {
			p += in.Type.Elems()
		}
	}
	return p
}

var opsByName = map[string]*OpInfo{}

// LookupOp finds an op of the table by name.
func LookupOp(name string) (*OpInfo, bool) {
	op, ok := opsByName[name]
	return op, ok
}

// Ops lists the table in a stable order.
func Ops() []*OpInfo {
	out := make([]*OpInfo, 0, len(opsByName))
	for _, op := range opsByName {
		out = append(out, op)
	}
	slices.SortFunc(out, func(a, b *OpInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

func register(ops ...*OpInfo) {
	for _, op := range ops {
		if _, dup := opsByName[op.Name]; dup {
			panic("ir: op registered twice: " + op.Name)
		}
		opsByName[op.Name] = op
	}
}

var inf = math.Inf(1)
