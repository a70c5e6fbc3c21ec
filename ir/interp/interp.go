// Package interp is cnnc's reference evaluator: it runs an ir.Graph on the
// CPU, one op at a time, exactly as the op table defines each op. It is the
// oracle that every pass and every GPU kernel is checked against, so it is
// written to be obviously right first and fast second.
//
// Data is float32 (whatever the graph's dtype); convolutions, matrix
// products, reductions, pooling means, normalization statistics and softmax
// accumulate in float64, and element-wise functions are the op table's own
// float64 functions (OpInfo.Unary, OpInfo.Binary).
package interp

import (
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"cnnc/ir"
)

// Tensor is a dense row-major float32 tensor. A rank-0 shape is a scalar
// with one element.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New makes a zero tensor of shape; the shape must be valid (no negative
// dimension).
func New(shape []int) *Tensor {
	return &Tensor{Shape: slices.Clone(shape), Data: make([]float32, ir.ShapeElems(shape))}
}

// FromIR decodes constant data (f32, f16, i64, i32 or bool) as float32. The
// tensor must be well formed (its Raw holds every element), as ir.Verify
// checks for a const node.
func FromIR(t *ir.Tensor) *Tensor {
	return &Tensor{Shape: slices.Clone(t.Shape), Data: t.Float32s()}
}

func (t *Tensor) clone() *Tensor {
	return &Tensor{Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
}

// Options tune RunWith.
type Options struct {
	// Workers is the number of goroutines that share a convolution or a
	// matrix product; 0 means GOMAXPROCS.
	Workers int
	// FillMissing, if non-zero, gives every const node without data (a
	// @blob that was never loaded) deterministic random data drawn from
	// this seed and the blob's name, instead of failing. Variances of
	// batchnorm are drawn from [0.5, 1.5) so that they stay positive.
	FillMissing int64
}

// Run evaluates g on inputs, one per g.Inputs in the same order with
// exactly the input's shape, and returns one tensor per g.Outputs.
func Run(g *ir.Graph, inputs []*Tensor) ([]*Tensor, error) {
	return RunWith(g, inputs, Options{})
}

// RunWith is Run with options. The graph is verified first; a failing node
// is reported as "interp: <node>: <what>". Inputs are never modified, each
// const is decoded at its first use and each value is released after its
// last use. A const that nothing reads is not decoded.
func RunWith(g *ir.Graph, inputs []*Tensor, opt Options) (outs []*Tensor, err error) {
	where := "graph " + g.Name
	defer func() {
		// Kernels do not panic on a verified graph; if one does, it is a
		// bug here, reported with the node rather than a crash.
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("interp: %s: internal error: %v", where, r)
		}
	}()
	if err := ir.Verify(g); err != nil {
		return nil, fmt.Errorf("interp: graph %s does not verify: %w", g.Name, err)
	}
	if err := checkInputs(g, inputs); err != nil {
		return nil, err
	}
	env := make(map[*ir.Value]*Tensor, len(g.Nodes)+len(g.Inputs))
	for i, v := range g.Inputs {
		env[v] = inputs[i]
	}

	e := &evaluator{workers: opt.Workers, fillSeed: opt.FillMissing, variances: varianceConsts(g)}
	if e.workers <= 0 {
		e.workers = runtime.GOMAXPROCS(0)
	}
	release := releasePlan(g)
	// A const is decoded when a node first reads it (and dropped after its
	// last reader like any value), so a model's weights are never all
	// decoded at once.
	value := func(v *ir.Value) (*Tensor, error) {
		if t, ok := env[v]; ok {
			return t, nil
		}
		t, err := e.constant(v.Def)
		if err != nil {
			return nil, fmt.Errorf("interp: %s: %w", v.Def.Describe(), err)
		}
		env[v] = t
		return t, nil
	}
	args := make([]*Tensor, 0, 8)
	for i, n := range g.Nodes {
		if n.Op == ir.OpConst {
			continue
		}
		where = n.Describe()
		args = args[:0]
		for _, v := range n.Inputs {
			t, err := value(v)
			if err != nil {
				return nil, err
			}
			args = append(args, t)
		}
		out, err := e.eval(n, args)
		if err != nil {
			return nil, fmt.Errorf("interp: %s: %w", where, err)
		}
		if !ir.ShapeEqual(out.Shape, n.Out.Type.Shape) || int64(len(out.Data)) != n.Out.Type.Elems() {
			return nil, fmt.Errorf("interp: %s: internal error: result has shape %s and %d values, want %s",
				where, formatShape(out.Shape), len(out.Data), n.Out.Type)
		}
		env[n.Out] = out
		for _, v := range release[i] {
			delete(env, v)
		}
	}

	outs = make([]*Tensor, len(g.Outputs))
	given := map[*Tensor]bool{}
	for _, t := range inputs {
		given[t] = true
	}
	for i, v := range g.Outputs {
		t, err := value(v)
		if err != nil {
			return nil, err
		}
		if given[t] {
			// A graph input or an output listed twice: never hand out
			// the same storage twice.
			t = t.clone()
		}
		given[t] = true
		outs[i] = t
	}
	return outs, nil
}

// checkInputs checks that there is one input per graph input, each with
// exactly its shape and data for every element.
func checkInputs(g *ir.Graph, inputs []*Tensor) error {
	if len(inputs) != len(g.Inputs) {
		return fmt.Errorf("interp: graph %s: got %d inputs, want %d", g.Name, len(inputs), len(g.Inputs))
	}
	for i, v := range g.Inputs {
		t := inputs[i]
		switch {
		case t == nil:
			return fmt.Errorf("interp: input %d %s: got nil, want shape %s", i, v, formatShape(v.Type.Shape))
		case !ir.ShapeEqual(t.Shape, v.Type.Shape):
			return fmt.Errorf("interp: input %d %s: got shape %s, want %s", i, v, formatShape(t.Shape), formatShape(v.Type.Shape))
		case int64(len(t.Data)) != v.Type.Elems():
			return fmt.Errorf("interp: input %d %s: got %d values, want %d for shape %s", i, v, len(t.Data), v.Type.Elems(), formatShape(t.Shape))
		}
	}
	return nil
}

// releasePlan lists, for each node, the values whose last use is that
// node, so that they can be dropped as soon as it has run. Graph outputs
// are never released; a value nobody reads is released where it is made.
func releasePlan(g *ir.Graph) [][]*ir.Value {
	last := map[*ir.Value]int{}
	for i, n := range g.Nodes {
		last[n.Out] = i
		for _, v := range n.Inputs {
			last[v] = i
		}
	}
	for _, v := range g.Outputs {
		delete(last, v)
	}
	plan := make([][]*ir.Value, len(g.Nodes))
	// Walk in a fixed order so that the plan is deterministic.
	for _, v := range g.Inputs {
		if i, ok := last[v]; ok {
			plan[i] = append(plan[i], v)
			delete(last, v)
		}
	}
	for _, n := range g.Nodes {
		if i, ok := last[n.Out]; ok {
			plan[i] = append(plan[i], n.Out)
			delete(last, n.Out)
		}
	}
	return plan
}

// varianceConsts finds the const values that a batchnorm reads as its
// variance, for FillMissing.
func varianceConsts(g *ir.Graph) map[*ir.Value]bool {
	out := map[*ir.Value]bool{}
	for _, n := range g.Nodes {
		if n.Op == ir.OpBatchNorm && len(n.Inputs) == 5 {
			out[n.Inputs[4]] = true
		}
	}
	return out
}

type evaluator struct {
	workers   int
	fillSeed  int64
	variances map[*ir.Value]bool
}

// kernel evaluates one node of a verified graph on its input tensors, whose
// shapes are the node's input types; it returns a fresh tensor of the
// node's output type and never writes to its inputs.
type kernel func(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error)

// kernels maps every op of the table that is not element-wise to its
// kernel; element-wise ops use their OpInfo.Unary or OpInfo.Binary.
var kernels = map[*ir.OpInfo]kernel{
	ir.OpConv2D:        evalConv2D,
	ir.OpBatchNorm:     evalBatchNorm,
	ir.OpLayerNorm:     evalLayerNorm,
	ir.OpLRN:           evalLRN,
	ir.OpMaxPool:       evalMaxPool,
	ir.OpAvgPool:       evalAvgPool,
	ir.OpGlobalAvgPool: evalGlobalAvgPool,
	ir.OpGlobalMaxPool: evalGlobalMaxPool,
	ir.OpGemm:          evalGemm,
	ir.OpMatMul:        evalMatMul,
	ir.OpReshape:       evalReshape,
	ir.OpTranspose:     evalTranspose,
	ir.OpConcat:        evalConcat,
	ir.OpSlice:         evalSlice,
	ir.OpPad:           evalPad,
	ir.OpSoftmax:       evalSoftmax,
	ir.OpReduceMean:    evalReduceMean,
}

// supported reports whether the interpreter can evaluate op (consts are
// decoded by Run itself).
func supported(op *ir.OpInfo) bool {
	return op == ir.OpConst || kernels[op] != nil || op.Unary != nil || op.Binary != nil
}

func (e *evaluator) eval(n *ir.Node, in []*Tensor) (*Tensor, error) {
	switch {
	case kernels[n.Op] != nil:
		return kernels[n.Op](e, n, in)
	case n.Op.Unary != nil && len(in) == 1:
		return evalUnary(n, in[0]), nil
	case n.Op.Binary != nil && len(in) == 2:
		return evalBinary(n, in[0], in[1]), nil
	}
	return nil, fmt.Errorf("op %s is not supported by the interpreter", n.Op.Name)
}

func (e *evaluator) constant(n *ir.Node) (*Tensor, error) {
	if n.Const != nil {
		return FromIR(n.Const), nil
	}
	if e.fillSeed == 0 {
		return nil, fmt.Errorf("const @%s has no data; load the weights or set Options.FillMissing", n.Blob)
	}
	name := n.Blob
	if name == "" {
		name = n.Out.Name
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	t := Random(n.Out.Type.Shape, uint64(e.fillSeed)^h.Sum64())
	if e.variances[n.Out] {
		for i, v := range t.Data {
			t.Data[i] = 1 + v/2 // [-1,1) -> [0.5,1.5)
		}
	}
	return t, nil
}

// formatShape prints a shape as the IR text form does: [1,3,224,224].
func formatShape(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
