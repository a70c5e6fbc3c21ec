package ir

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Value is an SSA value: a graph input or the single output of a node.
type Value struct {
	Name string // printed as %Name; unique in its graph
	Type Type
	Def  *Node // nil for a graph input
}

func (v *Value) String() string { return "%" + v.Name }

// Node is one operation. Every node defines exactly one value (ONNX ops
// with several outputs, like Split, are imported as several nodes).
type Node struct {
	Op     *OpInfo
	Inputs []*Value
	Attrs  Attrs
	Out    *Value
	Const  *Tensor // data of a const node; may be nil in parsed text
	Blob   string  // weight blob name of a const node printed as @Blob; "" prints the data inline
	Origin string  // the ONNX node this came from, for messages and dumps
	Sched  Schedule
}

// Schedule is how a node is grouped into kernels and tiled. Nodes with the
// same non-zero Kernel run as one fused kernel; Kernel 0 is a kernel of its
// own. Tile and SplitK, set on a kernel's GEMM anchor by the tile pass,
// choose the GEMM core's block tile (BM, BN, BK, TM, TN) and how many
// slices K is split into.
type Schedule struct {
	Kernel int
	Tile   []int
	SplitK int
	// Reduce is how a split K's partial sums meet: "" through a float
	// workspace and a second kernel, ReduceCluster in the distributed
	// shared memory of a thread-block cluster of the splits (Hopper).
	Reduce string
	// Persist, above 1, makes the GEMM core persistent (Hopper's wgmma
	// core): Persist blocks, each running the tiles ctaid, ctaid+Persist,
	// ... in turn, and staging the next tile's first K slices while it
	// writes the last one's output.
	Persist int
	// Layout is how the node's 4-D output is laid out in memory: "" for
	// NCHW, LayoutNHWC for channels last. The IR's shapes and the
	// interpreter stay NCHW; only addresses change.
	Layout string
}

// ReduceCluster is Schedule.Reduce for split-K partial sums added across
// a thread-block cluster.
const ReduceCluster = "cluster"

// LayoutNHWC is the channels-last memory layout of a 4-D value.
const LayoutNHWC = "nhwc"

// LayoutOf is the memory layout of v: its producer's schedule; graph
// inputs and constants are NCHW ("").
func LayoutOf(v *Value) string {
	if v.Def == nil {
		return ""
	}
	return v.Def.Sched.Layout
}

// String prints the schedule as the text form writes it after a node's
// type: "[k3]" or "[k3 tile=64,64,8,4,4 split_k=2 reduce=cluster
// persist=132 layout=nhwc]"; "" when
// empty.
func (s Schedule) String() string {
	if s.Kernel == 0 && len(s.Tile) == 0 && s.SplitK <= 1 && s.Reduce == "" && s.Persist <= 1 && s.Layout == "" {
		return ""
	}
	out := "[k" + strconv.Itoa(s.Kernel)
	if len(s.Tile) > 0 {
		parts := make([]string, len(s.Tile))
		for i, t := range s.Tile {
			parts[i] = strconv.Itoa(t)
		}
		out += " tile=" + strings.Join(parts, ",")
	}
	if s.SplitK > 1 {
		out += " split_k=" + strconv.Itoa(s.SplitK)
	}
	if s.Reduce != "" {
		out += " reduce=" + s.Reduce
	}
	if s.Persist > 1 {
		out += " persist=" + strconv.Itoa(s.Persist)
	}
	if s.Layout != "" {
		out += " layout=" + s.Layout
	}
	return out + "]"
}

// Describe names the node for an error message: its value, op and origin.
func (n *Node) Describe() string {
	s := fmt.Sprintf("%s = %s", n.Out, n.Op.Name)
	if n.Origin != "" {
		s += fmt.Sprintf(" (onnx node %q)", n.Origin)
	}
	return s
}

// Graph is a function from input values to output values, its nodes in
// topological order.
type Graph struct {
	Name    string
	Inputs  []*Value
	Outputs []*Value
	Nodes   []*Node

	// InputNames and OutputNames keep the external (ONNX) names of the
	// inputs and outputs, index for index; empty means the value names.
	InputNames  []string
	OutputNames []string

	used map[string]bool
	next int
}

// NewGraph makes an empty graph.
func NewGraph(name string) *Graph { return &Graph{Name: name, used: map[string]bool{}} }

// FreshName returns an unused numeric value name.
func (g *Graph) FreshName() string {
	g.ensureNames()
	for {
		g.next++
		s := strconv.Itoa(g.next)
		if !g.used[s] {
			return s
		}
	}
}

// UniqueName returns base, or base with a numeric suffix, unused in the graph.
func (g *Graph) UniqueName(base string) string {
	g.ensureNames()
	if !g.used[base] {
		return base
	}
	for i := 1; ; i++ {
		s := base + "_" + strconv.Itoa(i)
		if !g.used[s] {
			return s
		}
	}
}

func (g *Graph) ensureNames() {
	if g.used != nil {
		return
	}
	g.used = map[string]bool{}
	for _, v := range g.Inputs {
		g.used[v.Name] = true
	}
	for _, n := range g.Nodes {
		g.used[n.Out.Name] = true
	}
}

// AddInput appends a graph input named name (made unique).
func (g *Graph) AddInput(name string, t Type) *Value {
	v := &Value{Name: g.UniqueName(name), Type: t}
	g.used[v.Name] = true
	g.Inputs = append(g.Inputs, v)
	return v
}

// NewNode builds a node of op over inputs with attrs (defaults filled in
// from the op table), infers its output type and appends it. Errors name
// the op and what the shape rule expected.
func (g *Graph) NewNode(op *OpInfo, inputs []*Value, attrs Attrs, origin string) (*Node, error) {
	n := &Node{Op: op, Inputs: inputs, Attrs: op.withDefaults(attrs), Origin: origin}
	if err := op.checkArity(len(inputs)); err != nil {
		return nil, err
	}
	if err := op.checkAttrs(n.Attrs); err != nil {
		return nil, err
	}
	t, err := op.Infer(n)
	if err != nil {
		return nil, err
	}
	if t.Elems() < 0 {
		return nil, fmt.Errorf("%s: output shape %v has more than 2^40 elements or a negative dimension", op.Name, t.Shape)
	}
	n.Out = &Value{Name: g.FreshName(), Type: t, Def: n}
	g.used[n.Out.Name] = true
	g.Nodes = append(g.Nodes, n)
	return n, nil
}

// NewConst appends a const node holding t, printed as @blob ("" inlines it).
func (g *Graph) NewConst(t *Tensor, blob string, origin string) *Node {
	n := &Node{Op: OpConst, Attrs: Attrs{}, Const: t, Blob: blob, Origin: origin}
	n.Out = &Value{Name: g.FreshName(), Type: Type{DType: t.DType, Shape: slices.Clone(t.Shape)}, Def: n}
	g.used[n.Out.Name] = true
	g.Nodes = append(g.Nodes, n)
	return n
}

// NewConstShape appends a const node of type t without data (printed as
// @blob): enough for shape rules and the cost model, as parsed text gives.
func (g *Graph) NewConstShape(t Type, blob string, origin string) *Node {
	n := &Node{Op: OpConst, Attrs: Attrs{}, Blob: blob, Origin: origin}
	n.Out = &Value{Name: g.FreshName(), Type: Type{DType: t.DType, Shape: slices.Clone(t.Shape)}, Def: n}
	g.used[n.Out.Name] = true
	g.Nodes = append(g.Nodes, n)
	return n
}

// Rename gives v a new name, unique in the graph.
func (g *Graph) Rename(v *Value, name string) {
	g.ensureNames()
	delete(g.used, v.Name)
	v.Name = g.UniqueName(name)
	g.used[v.Name] = true
}

// Users maps each value to the nodes that read it, in node order.
func (g *Graph) Users() map[*Value][]*Node {
	u := map[*Value][]*Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			u[in] = append(u[in], n)
		}
	}
	return u
}

// ExternalInputName is the ONNX name of input i.
func (g *Graph) ExternalInputName(i int) string {
	if i < len(g.InputNames) && g.InputNames[i] != "" {
		return g.InputNames[i]
	}
	return g.Inputs[i].Name
}

// ExternalOutputName is the ONNX name of output i.
func (g *Graph) ExternalOutputName(i int) string {
	if i < len(g.OutputNames) && g.OutputNames[i] != "" {
		return g.OutputNames[i]
	}
	return g.Outputs[i].Name
}

// Attrs holds a node's attributes. Values are int, float64, string, []int
// or []float64, as the op table's AttrSpec says.
type Attrs map[string]any

// Int returns an int attribute.
func (n *Node) Int(name string) int { return n.Attrs[name].(int) }

// Float returns a float attribute.
func (n *Node) Float(name string) float64 { return n.Attrs[name].(float64) }

// Ints returns an int list attribute.
func (n *Node) Ints(name string) []int { return n.Attrs[name].([]int) }

// Floats returns a float list attribute.
func (n *Node) Floats(name string) []float64 { return n.Attrs[name].([]float64) }

// Str returns a string attribute.
func (n *Node) Str(name string) string { return n.Attrs[name].(string) }
