package onnxbuild

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"cnnc/frontend/onnx"
)

// Builder assembles an ONNX model one node at a time. Its methods panic on
// misuse (data that does not match its dimensions), which is a bug in the
// calling code rather than bad input.
type Builder struct {
	m     *onnx.Model
	nodes int // nodes added so far, for automatic names
}

// IRVersion and Producer are written into every model a Builder makes.
const (
	IRVersion = 8
	Producer  = "cnnc-onnxbuild"
)

// New starts a model whose graph is named graphName and which imports
// opset of the default (ai.onnx) domain.
func New(graphName string, opset int64) *Builder {
	return &Builder{m: &onnx.Model{
		IRVersion:    IRVersion,
		ProducerName: Producer,
		Opsets:       []onnx.OpsetID{{Version: opset}},
		Graph:        &onnx.Graph{Name: graphName},
	}}
}

// Input declares a graph input of element type dt and returns its name.
// A dimension <= 0 is symbolic, written as dim_param "N".
func (b *Builder) Input(name string, dt onnx.DataType, dims ...int64) string {
	b.m.Graph.Inputs = append(b.m.Graph.Inputs, valueInfo(name, dt, dims, true))
	return name
}

// Output declares a graph output of element type dt. Without dims it has no
// shape; a dimension <= 0 is symbolic ("N"), as for Input.
func (b *Builder) Output(name string, dt onnx.DataType, dims ...int64) {
	b.m.Graph.Outputs = append(b.m.Graph.Outputs, valueInfo(name, dt, dims, dims != nil))
}

func valueInfo(name string, dt onnx.DataType, dims []int64, hasShape bool) *onnx.ValueInfo {
	v := &onnx.ValueInfo{Name: name, HasTensorType: true, ElemType: int32(dt), HasShape: hasShape}
	for _, d := range dims {
		if d <= 0 {
			v.Dims = append(v.Dims, onnx.Dim{Param: "N"})
		} else {
			v.Dims = append(v.Dims, onnx.Dim{Value: d, HasValue: true})
		}
	}
	return v
}

// Initializer adds a FLOAT initializer stored as raw_data (little-endian, as
// PyTorch writes it) and returns its name. len(data) must equal the product
// of dims (1 for a scalar, dims empty).
func (b *Builder) Initializer(name string, dims []int64, data []float32) string {
	checkCount(name, dims, len(data))
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return b.addInitializer(name, onnx.DTFloat, dims, raw)
}

// InitializerInt64 adds an INT64 initializer stored as raw_data and returns
// its name.
func (b *Builder) InitializerInt64(name string, dims []int64, data []int64) string {
	checkCount(name, dims, len(data))
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return b.addInitializer(name, onnx.DTInt64, dims, raw)
}

// Random adds a FLOAT initializer with values uniform in [-scale, scale),
// drawn from a PCG generator seeded with seed: the same arguments always
// give the same data.
func (b *Builder) Random(name string, dims []int64, scale float32, seed uint64) string {
	return b.Initializer(name, dims, uniform(elems(dims), -scale, scale, seed))
}

// uniform returns n values uniform in [lo, hi) from a PCG generator seeded
// with seed (and the same second seed as ir/interp's Random).
func uniform(n int, lo, hi float32, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]float32, n)
	for i := range out {
		out[i] = lo + (hi-lo)*r.Float32()
	}
	return out
}

func (b *Builder) addInitializer(name string, dt onnx.DataType, dims []int64, raw []byte) string {
	b.m.Graph.Initializers = append(b.m.Graph.Initializers, &onnx.Tensor{
		Name: name, Dims: slices.Clone(dims), DataType: dt, Raw: raw,
	})
	return name
}

func elems(dims []int64) int {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			panic(fmt.Sprintf("onnxbuild: negative dimension in %v", dims))
		}
		n *= d
	}
	return int(n)
}

func checkCount(name string, dims []int64, got int) {
	if want := elems(dims); got != want {
		panic(fmt.Sprintf("onnxbuild: initializer %q has %d values, want %d for dims %v", name, got, want, dims))
	}
}

// Node adds a node of op type op with one output and returns the output's
// name. The output is named "/<op>_<k>" and the node "node_<op>_<k>", where
// k counts the nodes added so far; an input "" is a missing optional input.
func (b *Builder) Node(op string, inputs []string, attrs ...*onnx.Attribute) string {
	return b.NodeN(op, inputs, 1, attrs...)[0]
}

// NodeN adds a node with nOut outputs, named "/<op>_<k>" for the first and
// "/<op>_<k>_output_<i>" for output i > 0, and returns their names.
func (b *Builder) NodeN(op string, inputs []string, nOut int, attrs ...*onnx.Attribute) []string {
	base := op + "_" + strconv.Itoa(b.nodes)
	b.nodes++
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = "/" + base
		if i > 0 {
			outs[i] += "_output_" + strconv.Itoa(i)
		}
	}
	b.m.Graph.Nodes = append(b.m.Graph.Nodes, &onnx.Node{
		Name: "node_" + base, OpType: op,
		Inputs: slices.Clone(inputs), Outputs: outs, Attrs: attrs,
	})
	return slices.Clone(outs)
}

// Rename renames the value from to to wherever a node or a graph output
// uses it, as for giving the last node's output the graph output's name.
func (b *Builder) Rename(from, to string) {
	g := b.m.Graph
	for _, n := range g.Nodes {
		for i := range n.Inputs {
			if n.Inputs[i] == from {
				n.Inputs[i] = to
			}
		}
		for i := range n.Outputs {
			if n.Outputs[i] == from {
				n.Outputs[i] = to
			}
		}
	}
	for _, v := range g.Outputs {
		if v.Name == from {
			v.Name = to
		}
	}
}

// Ints makes an INTS attribute.
func Ints(name string, v ...int64) *onnx.Attribute {
	a := &onnx.Attribute{Name: name, Type: onnx.AttrInts}
	if len(v) > 0 {
		a.Ints = slices.Clone(v)
	}
	return a
}

// Int makes an INT attribute.
func Int(name string, v int64) *onnx.Attribute {
	return &onnx.Attribute{Name: name, Type: onnx.AttrInt, I: v}
}

// Float makes a FLOAT attribute.
func Float(name string, v float32) *onnx.Attribute {
	return &onnx.Attribute{Name: name, Type: onnx.AttrFloat, F: v}
}

// String makes a STRING attribute.
func String(name, s string) *onnx.Attribute {
	return &onnx.Attribute{Name: name, Type: onnx.AttrString, S: []byte(s)}
}

// Model returns the model built so far. It is the Builder's own: later
// calls keep adding to it.
func (b *Builder) Model() *onnx.Model { return b.m }

// Bytes returns the model serialized as a .onnx file.
func (b *Builder) Bytes() []byte { return Encode(b.m) }

// WriteExternal writes the model to dir/name with every initializer larger
// than threshold bytes moved into dir/name+".data", as PyTorch's exporter
// does for large models: each moved tensor has data_location EXTERNAL and
// external_data entries location (the data file's name, relative to the
// model's folder), offset and length, and the tensors lie one after another
// in initializer order. The Builder's model is not changed. No data file is
// written when no initializer is moved.
func (b *Builder) WriteExternal(dir, name string, threshold int) error {
	dataName := name + ".data"
	g := *b.m.Graph
	g.Initializers = slices.Clone(g.Initializers)
	var data []byte
	for i, t := range g.Initializers {
		if t.Raw == nil || len(t.Raw) <= threshold {
			continue
		}
		ext := *t
		ext.Raw = nil
		ext.DataLocation = 1 // EXTERNAL
		ext.External = []onnx.KeyValue{
			{Key: "location", Value: dataName},
			{Key: "offset", Value: strconv.Itoa(len(data))},
			{Key: "length", Value: strconv.Itoa(len(t.Raw))},
		}
		data = append(data, t.Raw...)
		g.Initializers[i] = &ext
	}
	m := *b.m
	m.Graph = &g
	if data != nil {
		if err := os.WriteFile(filepath.Join(dir, dataName), data, 0o644); err != nil {
			return fmt.Errorf("onnxbuild: writing external data: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), Encode(&m), 0o644); err != nil {
		return fmt.Errorf("onnxbuild: writing the model: %w", err)
	}
	return nil
}
