package onnx

import (
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
)

// enc is a tiny protobuf encoder for building test messages.
type enc []byte

func (e enc) tag(num protowire.Number, t protowire.Type) enc {
	return protowire.AppendTag(slices.Clip(e), num, t) // never alias a shared prefix
}

func (e enc) varint(num protowire.Number, v int64) enc {
	return protowire.AppendVarint(e.tag(num, protowire.VarintType), uint64(v))
}

func (e enc) str(num protowire.Number, s string) enc {
	return protowire.AppendString(e.tag(num, protowire.BytesType), s)
}

func (e enc) bytes(num protowire.Number, b []byte) enc {
	return protowire.AppendBytes(e.tag(num, protowire.BytesType), b)
}

func (e enc) msg(num protowire.Number, m enc) enc { return e.bytes(num, m) }

func (e enc) fixed32(num protowire.Number, v uint32) enc {
	return protowire.AppendFixed32(e.tag(num, protowire.Fixed32Type), v)
}

func (e enc) fixed64(num protowire.Number, v uint64) enc {
	return protowire.AppendFixed64(e.tag(num, protowire.Fixed64Type), v)
}

func (e enc) float(num protowire.Number, f float32) enc { return e.fixed32(num, math.Float32bits(f)) }

func (e enc) group(num protowire.Number, body enc) enc {
	e = append(e.tag(num, protowire.StartGroupType), body...)
	return e.tag(num, protowire.EndGroupType)
}

// ints encodes vs as repeated varints, packed or one field per value.
func (e enc) ints(num protowire.Number, packed bool, vs ...int64) enc {
	if !packed {
		for _, v := range vs {
			e = e.varint(num, v)
		}
		return e
	}
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, uint64(v))
	}
	return e.bytes(num, p)
}

func (e enc) floats(num protowire.Number, packed bool, vs ...float32) enc {
	if !packed {
		for _, v := range vs {
			e = e.float(num, v)
		}
		return e
	}
	var p []byte
	for _, v := range vs {
		p = protowire.AppendFixed32(p, math.Float32bits(v))
	}
	return e.bytes(num, p)
}

func (e enc) doubles(num protowire.Number, packed bool, vs ...float64) enc {
	if !packed {
		for _, v := range vs {
			e = e.fixed64(num, math.Float64bits(v))
		}
		return e
	}
	var p []byte
	for _, v := range vs {
		p = protowire.AppendFixed64(p, math.Float64bits(v))
	}
	return e.bytes(num, p)
}

// valueInfo encodes a ValueInfoProto with a tensor type; a dim is an int64
// value or a string parameter.
func valueInfo(name string, elem int64, dims ...any) enc {
	var shape enc
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape = shape.msg(1, enc{}.varint(1, int64(d)))
		case string:
			shape = shape.msg(1, enc{}.str(2, d))
		}
	}
	tt := enc{}.varint(1, elem).msg(2, shape)
	return enc{}.str(1, name).msg(2, enc{}.msg(1, tt))
}

// testModel builds a model exercising every decoded field. The graph is the
// last field, so every strict prefix is missing it or truncates it.
func testModel(packed bool) enc {
	weight := enc{}.str(8, "w").varint(2, int64(DTFloat)).ints(1, packed, 2, 2).
		bytes(9, []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64})
	ext := enc{}.str(8, "ext").varint(2, int64(DTInt64)).ints(1, packed, 3).
		msg(13, enc{}.str(1, "location").str(2, "w.bin")).
		msg(13, enc{}.str(1, "offset").str(2, "4096")).varint(14, 1)
	sub := enc{}.str(2, "body").msg(1, enc{}.str(1, "a").str(2, "b").str(4, "Identity"))
	attrs := []enc{
		enc{}.str(1, "alpha").varint(20, int64(AttrFloat)).float(2, 0.5),
		enc{}.str(1, "axis").varint(20, int64(AttrInt)).varint(3, -1),
		enc{}.str(1, "mode").varint(20, int64(AttrString)).str(4, "constant"),
		enc{}.str(1, "value").varint(20, int64(AttrTensor)).msg(5, enc{}.str(8, "v").varint(2, 6).ints(5, packed, -7, 8)),
		enc{}.str(1, "body").varint(20, int64(AttrGraph)).msg(6, sub),
		enc{}.str(1, "scales").varint(20, int64(AttrFloats)).floats(7, packed, 1, 2.5),
		enc{}.str(1, "pads").varint(20, int64(AttrInts)).ints(8, packed, 1, -2, 1<<40),
		enc{}.str(1, "names").varint(20, int64(AttrStrings)).str(9, "p").str(9, "q"),
		enc{}.str(1, "ts").varint(20, int64(AttrTensors)).msg(10, enc{}.str(8, "t0")).msg(10, enc{}.str(8, "t1")),
		enc{}.str(1, "ref").varint(20, int64(AttrInt)).str(21, "outer"),
	}
	node := enc{}.str(1, "x").str(1, "w").str(1, "").str(2, "y").str(3, "n0").str(4, "Conv").str(7, "ai.onnx")
	for _, a := range attrs {
		node = node.msg(5, a)
	}
	graph := enc{}.msg(1, node).str(2, "main").msg(5, weight).msg(5, ext).
		msg(11, valueInfo("x", 1, 1, "N", 4)).msg(12, valueInfo("y", 1)).
		msg(13, enc{}.str(1, "mid")).msg(15, enc{}.msg(1, enc{}))
	return enc{}.varint(1, 10).str(2, "test").str(3, "1.0").
		msg(8, enc{}.varint(2, 22)).msg(8, enc{}.str(1, "ai.onnx.ml").varint(2, 3)).
		msg(7, graph)
}

func wantModel() *Model {
	f32 := func(v ...float32) []float32 { return v }
	return &Model{
		IRVersion: 10, ProducerName: "test", ProducerVersion: "1.0",
		Opsets: []OpsetID{{"", 22}, {"ai.onnx.ml", 3}},
		Graph: &Graph{
			Name: "main",
			Nodes: []*Node{{
				Name: "n0", OpType: "Conv", Domain: "ai.onnx",
				Inputs: []string{"x", "w", ""}, Outputs: []string{"y"},
				Attrs: []*Attribute{
					{Name: "alpha", Type: AttrFloat, F: 0.5},
					{Name: "axis", Type: AttrInt, I: -1},
					{Name: "mode", Type: AttrString, S: []byte("constant")},
					{Name: "value", Type: AttrTensor, T: &Tensor{Name: "v", DataType: DTInt32, Int32Data: []int32{-7, 8}}},
					{Name: "body", Type: AttrGraph, G: &Graph{Name: "body", Nodes: []*Node{
						{OpType: "Identity", Inputs: []string{"a"}, Outputs: []string{"b"}}}}},
					{Name: "scales", Type: AttrFloats, Floats: f32(1, 2.5)},
					{Name: "pads", Type: AttrInts, Ints: []int64{1, -2, 1 << 40}},
					{Name: "names", Type: AttrStrings, Strings: [][]byte{[]byte("p"), []byte("q")}},
					{Name: "ts", Type: AttrTensors, Tensors: []*Tensor{{Name: "t0"}, {Name: "t1"}}},
					{Name: "ref", Type: AttrInt, RefAttrName: "outer"},
				},
			}},
			Initializers: []*Tensor{
				{Name: "w", DataType: DTFloat, Dims: []int64{2, 2},
					Raw: []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64}},
				{Name: "ext", DataType: DTInt64, Dims: []int64{3}, DataLocation: 1,
					External: []KeyValue{{"location", "w.bin"}, {"offset", "4096"}}},
			},
			Inputs: []*ValueInfo{{Name: "x", HasTensorType: true, ElemType: 1, HasShape: true,
				Dims: []Dim{{Value: 1, HasValue: true}, {Param: "N"}, {Value: 4, HasValue: true}}}},
			Outputs:               []*ValueInfo{{Name: "y", HasTensorType: true, ElemType: 1, HasShape: true}},
			ValueInfo:             []*ValueInfo{{Name: "mid"}},
			HasSparseInitializers: true,
		},
	}
}

func TestDecodeModel(t *testing.T) {
	for _, packed := range []bool{false, true} {
		b := testModel(packed)
		m, err := DecodeModel(b)
		if err != nil {
			t.Fatalf("packed=%v: %v", packed, err)
		}
		if diff := cmp.Diff(wantModel(), m); diff != "" {
			t.Errorf("packed=%v: model mismatch (-want +got):\n%s", packed, diff)
		}
		raw := m.Graph.Initializers[0].Raw
		start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		p := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
		if p < start || p >= start+uintptr(len(b)) {
			t.Errorf("packed=%v: Raw does not alias the input buffer", packed)
		}
	}
}

func TestPackedAndUnpackedTensorData(t *testing.T) {
	build := func(packed bool) enc {
		return enc{}.ints(1, packed, 2, 3).floats(4, packed, 1.5, -2).
			ints(5, packed, -1, math.MaxInt32, math.MinInt32).ints(7, packed, -5, math.MaxInt64).
			doubles(10, packed, 0.25, -8).ints(11, packed, 7, -1). // -1 is 2^64-1 as uint64
			str(6, "s0").str(6, "")
	}
	want := &Tensor{
		Dims: []int64{2, 3}, FloatData: []float32{1.5, -2},
		Int32Data:  []int32{-1, math.MaxInt32, math.MinInt32},
		Int64Data:  []int64{-5, math.MaxInt64},
		DoubleData: []float64{0.25, -8}, Uint64Data: []uint64{7, math.MaxUint64},
		StringData: [][]byte{[]byte("s0"), {}},
	}
	for _, packed := range []bool{false, true} {
		got, err := DecodeTensor(build(packed))
		if err != nil {
			t.Fatalf("packed=%v: %v", packed, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("packed=%v: (-want +got):\n%s", packed, diff)
		}
	}
	// A parser must accept both encodings of one field in the same message.
	mixed := enc{}.ints(1, true, 1, 2).ints(1, false, 3).floats(4, false, 1).floats(4, true, 2, 3)
	got, err := DecodeTensor(mixed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Tensor{Dims: []int64{1, 2, 3}, FloatData: []float32{1, 2, 3}}, got); diff != "" {
		t.Errorf("mixed packed/unpacked (-want +got):\n%s", diff)
	}
}

// junk holds one unknown field of every wire type, including a nested group.
var junk = enc{}.varint(1000, 7).fixed32(1001, 1).fixed64(1002, 2).str(1003, "zz").
	group(1004, enc{}.varint(1, 1).group(2, enc{}.str(3, "in")))

func TestUnknownFieldsSkipped(t *testing.T) {
	// Known-but-ignored onnx.proto fields (doc_string, domain, metadata, ...)
	// plus junk in every message the decoder descends into.
	tensor := enc{}.str(12, "doc").str(8, "t").ints(1, true, 1).bytes(9, []byte{1}).msg(16, enc{}.str(1, "k"))
	tensor = append(tensor, junk...)
	attr := append(enc{}.str(1, "a").str(13, "doc").varint(20, 4).msg(5, tensor).msg(14, enc{}), junk...)
	dim := append(enc{}.varint(1, 5).str(3, "batch"), junk...)
	shape := append(enc{}.msg(1, dim), junk...)
	tt := append(enc{}.varint(1, 1).msg(2, shape), junk...)
	typ := append(enc{}.msg(1, tt).str(6, "IMAGE"), junk...)
	vi := append(enc{}.str(1, "x").msg(2, typ).str(3, "doc"), junk...)
	node := append(enc{}.str(4, "Relu").str(6, "doc").str(8, "ovl").msg(5, attr), junk...)
	graph := append(enc{}.msg(1, node).str(10, "doc").msg(11, vi).msg(14, enc{}.str(1, "q")), junk...)
	opset := append(enc{}.varint(2, 13), junk...)
	model := append(enc{}.varint(1, 8).str(4, "dom").varint(5, 2).str(6, "doc").
		msg(8, opset).msg(14, enc{}.str(1, "k")).msg(20, enc{}).msg(25, enc{}.str(1, "f")), junk...)
	model = model.msg(7, graph)

	m, err := DecodeModel(model)
	if err != nil {
		t.Fatal(err)
	}
	want := &Model{IRVersion: 8, Opsets: []OpsetID{{"", 13}}, Graph: &Graph{
		Nodes: []*Node{{OpType: "Relu", Attrs: []*Attribute{{Name: "a", Type: AttrTensor,
			T: &Tensor{Name: "t", Dims: []int64{1}, Raw: []byte{1}}}}}},
		Inputs: []*ValueInfo{{Name: "x", HasTensorType: true, ElemType: 1, HasShape: true,
			Dims: []Dim{{Value: 5, HasValue: true}}}},
	}}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestOneofLastWins(t *testing.T) {
	dims := enc{}.msg(1, enc{}.varint(1, 3).str(2, "N")).msg(1, enc{}.str(2, "M").varint(1, 4))
	tt := enc{}.varint(1, 1).msg(2, dims)
	seqThenTensor := enc{}.msg(4, enc{}).msg(1, tt)
	tensorThenSeq := enc{}.msg(1, tt).msg(4, enc{})
	g := enc{}.msg(11, enc{}.str(1, "a").msg(2, seqThenTensor)).msg(11, enc{}.str(1, "b").msg(2, tensorThenSeq))
	m, err := DecodeModel(enc{}.msg(8, enc{}.varint(2, 1)).msg(7, g))
	if err != nil {
		t.Fatal(err)
	}
	want := []*ValueInfo{
		{Name: "a", HasTensorType: true, ElemType: 1, HasShape: true, Dims: []Dim{{Param: "N"}, {Value: 4, HasValue: true}}},
		{Name: "b"},
	}
	if diff := cmp.Diff(want, m.Graph.Inputs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTruncatedPrefixes(t *testing.T) {
	inputs := map[string][]byte{"packed": testModel(true), "unpacked": testModel(false)}
	if b, err := os.ReadFile(convModelPath()); err == nil {
		inputs["conv"] = b
	}
	for name, b := range inputs {
		if _, err := DecodeModel(b); err != nil {
			t.Fatalf("%s: full model: %v", name, err)
		}
		for n := range len(b) {
			if m, err := DecodeModel(b[:n:n]); err == nil {
				t.Errorf("%s: prefix of %d/%d bytes decoded without error: %+v", name, n, len(b), m)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	opset := enc{}.msg(8, enc{}.varint(2, 1))
	model := func(graph enc) enc { return opset.msg(7, graph) }
	node := func(attrs ...enc) enc {
		n := enc{}.str(4, "Conv")
		for _, a := range attrs {
			n = n.msg(5, a)
		}
		return n
	}
	badPads := enc{}.str(1, "pads").bytes(8, []byte{1, 0x80})
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "ModelProto.graph: missing"},
		{"no opset", enc{}.varint(1, 7).msg(7, enc{}), "ModelProto.opset_import: missing"},
		{"ir_version bytes", enc{}.str(1, "x"), "ModelProto.ir_version: wrong wire type length-delimited, want varint"},
		{"graph varint", enc{}.varint(7, 1), "ModelProto.graph: wrong wire type varint, want length-delimited"},
		{"graph group", enc{}.group(7, nil), "ModelProto.graph: wrong wire type start-group"},
		{"opset version fixed64", enc{}.msg(8, enc{}.fixed64(2, 1)), "ModelProto.opset_import[0]: OperatorSetIdProto.version: wrong wire type fixed64"},
		{"truncated packed ints", model(enc{}.msg(1, node()).msg(1, node(enc{}, badPads))),
			`ModelProto.graph: GraphProto.node[1] (Conv): NodeProto.attribute[1] "pads": AttributeProto.ints: truncated packed varint`},
		{"attr f varint", model(enc{}.msg(1, node(enc{}.str(1, "alpha").varint(2, 1)))),
			`NodeProto.attribute[0] "alpha": AttributeProto.f: wrong wire type varint, want fixed32`},
		{"dims fixed64", model(enc{}.msg(5, enc{}.str(8, "w").fixed64(1, 3))),
			`GraphProto.initializer[0] "w": TensorProto.dims: wrong wire type fixed64, want varint or packed`},
		{"float_data varint", model(enc{}.msg(5, enc{}.varint(4, 3))),
			"GraphProto.initializer[0]: TensorProto.float_data: wrong wire type varint, want fixed32 or packed"},
		{"float_data packed odd", model(enc{}.msg(5, enc{}.bytes(4, make([]byte, 5)))),
			"TensorProto.float_data: packed length 5 is not a multiple of 4"},
		{"double_data packed odd", model(enc{}.msg(5, enc{}.bytes(10, make([]byte, 12)))),
			"TensorProto.double_data: packed length 12 is not a multiple of 8"},
		{"raw_data varint", model(enc{}.msg(5, enc{}.varint(9, 1))), "TensorProto.raw_data: wrong wire type varint"},
		{"segment varint", model(enc{}.msg(5, enc{}.varint(3, 1))), "TensorProto.segment: wrong wire type varint"},
		{"sparse varint", model(enc{}.varint(15, 1)), "GraphProto.sparse_initializer[0]: wrong wire type varint"},
		{"dim_param varint", model(enc{}.msg(12, valueInfo("y", 1).msg(2, enc{}.msg(1, enc{}.msg(2, enc{}.msg(1, enc{}.varint(2, 1))))))),
			`GraphProto.output[0] "y": ValueInfoProto.type: TypeProto.tensor_type: TypeProto.Tensor.shape: TensorShapeProto.dim[0]: TensorShapeProto.Dimension.dim_param: wrong wire type varint`},
		{"external key varint", model(enc{}.msg(5, enc{}.msg(13, enc{}.varint(1, 1)))),
			"TensorProto.external_data[0]: StringStringEntryProto.key: wrong wire type varint"},
		{"truncated length", cat(opset, 0x3a, 0x05, 0x0a), "ModelProto.graph: truncated length-delimited value"},
		{"bad tag", cat(opset, 0x00), "ModelProto: invalid tag"},
		{"truncated unknown", cat(opset, 0xc2, 0x3e, 0x09), "ModelProto field 1000: truncated length-delimited value"},
		{"unterminated group", cat(opset.tag(1004, protowire.StartGroupType), 0x08, 0x01), "ModelProto field 1004: truncated start-group value"},
		{"stray end group", opset.tag(1004, protowire.EndGroupType), "ModelProto field 1004"},
		{"reserved wire type", cat(opset, 0x0e), "ModelProto.ir_version: invalid wire type 6 value"},
		{"reserved wire type unknown", cat(opset, 0xc6, 0x3e), "ModelProto field 1000: invalid wire type 6 value"},
		{"overlong varint", cat(opset, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
			"ModelProto.ir_version: invalid varint value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeModel(tc.in)
			if err == nil {
				t.Fatalf("no error; got %+v", m)
			}
			if !strings.HasPrefix(err.Error(), "onnx: decoding ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			if m != nil {
				t.Errorf("non-nil model with error")
			}
		})
	}
}

// cat returns a new message a followed by raw bytes b.
func cat(a enc, b ...byte) enc { return slices.Concat(a, b) }

func TestTruncationErrorIsUnexpectedEOF(t *testing.T) {
	b := testModel(true)
	_, err := DecodeModel(b[:len(b)-1])
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("errors.Is(%v, io.ErrUnexpectedEOF) = false", err)
	}
}

// nested returns a model whose graph nests depth subgraphs through "body".
func nested(depth int) enc {
	g := enc{}.str(2, "leaf")
	for range depth {
		attr := enc{}.str(1, "body").varint(20, int64(AttrGraph)).msg(6, g)
		g = enc{}.msg(1, enc{}.str(4, "Loop").msg(5, attr))
	}
	return enc{}.msg(8, enc{}.varint(2, 1)).msg(7, g)
}

func TestNestingDepth(t *testing.T) {
	m, err := DecodeModel(nested(maxDepth))
	if err != nil {
		t.Fatalf("depth %d: %v", maxDepth, err)
	}
	g := m.Graph
	for range maxDepth {
		g = g.Nodes[0].Attrs[0].G
	}
	if g.Name != "leaf" {
		t.Errorf("innermost graph %q, want leaf", g.Name)
	}
	_, err = DecodeModel(nested(maxDepth + 1))
	if err == nil || !strings.Contains(err.Error(), "graphs nested more than 64 deep") {
		t.Errorf("depth %d: error %v, want nesting error", maxDepth+1, err)
	}
}

func TestEnumStrings(t *testing.T) {
	for v, want := range map[AttrType]string{AttrUndefined: "UNDEFINED", AttrInts: "INTS",
		AttrGraphs: "GRAPHS", AttrSparseTensor: "SPARSE_TENSOR", AttrTypeProtos: "TYPE_PROTOS", 99: "AttrType(99)"} {
		if got := v.String(); got != want {
			t.Errorf("AttrType(%d).String() = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[DataType]string{DTFloat: "FLOAT", DTFloat16: "FLOAT16", DTBFloat16: "BFLOAT16",
		DTComplex128: "COMPLEX128", DTFloat8E8M0: "FLOAT8E8M0", DTInt2: "INT2", -1: "DataType(-1)"} {
		if got := v.String(); got != want {
			t.Errorf("DataType(%d).String() = %q, want %q", v, got, want)
		}
	}
}

func testsDir() string { return filepath.Join("..", "..", "..", "shared", "onnx-tests") }

func convModelPath() string {
	return filepath.Join(testsDir(), "node", "test_conv_with_strides_padding", "model.onnx")
}

func TestRealConvModel(t *testing.T) {
	b, err := os.ReadFile(convModelPath())
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("ONNX node tests not found; expected %s (/work/shared/onnx-tests)", convModelPath())
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeModel(b)
	if err != nil {
		t.Fatal(err)
	}
	tensor := func(name string, dims ...any) *ValueInfo {
		v := valueInfoOf(name, dims...)
		return &v
	}
	ints := func(name string, v ...int64) *Attribute { return &Attribute{Name: name, Type: AttrInts, Ints: v} }
	want := &Model{
		IRVersion: 10, ProducerName: "backend-test", Opsets: []OpsetID{{"", 22}},
		Graph: &Graph{
			Name: "test_conv_with_strides_padding",
			Nodes: []*Node{{OpType: "Conv", Inputs: []string{"x", "W"}, Outputs: []string{"y"},
				Attrs: []*Attribute{ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1), ints("strides", 2, 2)}}},
			Inputs:  []*ValueInfo{tensor("x", 1, 1, 7, 5), tensor("W", 1, 1, 3, 3)},
			Outputs: []*ValueInfo{tensor("y", 1, 1, 4, 3)},
		},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	in, err := os.ReadFile(filepath.Join(filepath.Dir(convModelPath()), "test_data_set_0", "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := DecodeTensor(in)
	if err != nil {
		t.Fatal(err)
	}
	if x.Name != "x" || x.DataType != DTFloat || !cmp.Equal(x.Dims, []int64{1, 1, 7, 5}) {
		t.Errorf("input_0: name %q type %v dims %v, want x FLOAT [1 1 7 5]", x.Name, x.DataType, x.Dims)
	}
	n := 1
	for _, d := range x.Dims {
		n *= int(d)
	}
	if len(x.Raw) != 4*n && len(x.FloatData) != n {
		t.Errorf("input_0: %d raw bytes, %d floats; want %d elements", len(x.Raw), len(x.FloatData), n)
	}
	if got := math.Float32frombits(uint32(x.Raw[4]) | uint32(x.Raw[5])<<8 | uint32(x.Raw[6])<<16 | uint32(x.Raw[7])<<24); got != 1 {
		t.Errorf("input_0 element 1 = %v, want 1", got)
	}
}

// valueInfoOf is the decoded form of a FLOAT tensor ValueInfo with int dims.
func valueInfoOf(name string, dims ...any) ValueInfo {
	v := ValueInfo{Name: name, HasTensorType: true, ElemType: int32(DTFloat), HasShape: true}
	for _, d := range dims {
		v.Dims = append(v.Dims, Dim{Value: int64(d.(int)), HasValue: true})
	}
	return v
}

// TestAllTestModels decodes every model.onnx of the ONNX test suites.
func TestAllTestModels(t *testing.T) {
	paths := modelFiles(t, testsDir())
	if len(paths) == 0 {
		t.Skipf("no model.onnx found under %s (/work/shared/onnx-tests)", testsDir())
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeModel(b)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if len(m.Graph.Nodes) == 0 {
			t.Errorf("%s: graph has no nodes", p)
		}
	}
	t.Logf("decoded %d models", len(paths))
}

// modelFiles lists the model.onnx files under dir; none if dir is missing.
func modelFiles(tb testing.TB, dir string) []string {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // WalkDir does not descend into a symlinked root
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "model.onnx" {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
	return paths
}
