package onnxbuild

import (
	"bytes"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protowire"

	"cnnc/frontend/onnx"
)

// conformanceDir is the ONNX backend test data in shared/.
var conformanceDir = filepath.Join("..", "..", "..", "..", "shared", "onnx-tests")

// conformanceModels returns the paths of every .onnx file under
// conformanceDir, skipping the test if there is none.
func conformanceModels(t *testing.T) []string {
	t.Helper()
	paths, err := findModels(conformanceDir)
	if err != nil || len(paths) == 0 {
		t.Skipf("no ONNX conformance models under %s (%v)", conformanceDir, err)
	}
	return paths
}

// findModels returns the paths of the .onnx files under dir.
func findModels(dir string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".onnx") {
			paths = append(paths, p)
		}
		return err
	})
	return paths, err
}

// roundTrip checks that m survives Encode and DecodeModel unchanged and
// that the encoding is a fixed point, returning the bytes.
func roundTrip(t *testing.T, what string, m *onnx.Model) []byte {
	t.Helper()
	enc := Encode(m)
	got, err := onnx.DecodeModel(enc)
	if err != nil {
		t.Fatalf("%s: decoding the encoded model: %v", what, err)
	}
	if diff := cmp.Diff(m, got, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("%s: DecodeModel(Encode(m)) differs (-want +got):\n%s", what, diff)
	}
	if again := Encode(got); !bytes.Equal(again, enc) {
		t.Errorf("%s: re-encoding the decoded model gives %d different bytes, want the same %d", what, len(again), len(enc))
	}
	return enc
}

func TestEncodeRoundTripsConformanceModels(t *testing.T) {
	identical := 0
	for _, path := range conformanceModels(t) {
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := onnx.DecodeModel(orig)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		enc := roundTrip(t, path, m)
		// The node tests were written by onnx's Python helpers through
		// protobuf's own serializer, and hold only fields the decoder
		// keeps: Encode must reproduce them byte for byte.
		if filepath.Base(filepath.Dir(filepath.Dir(path))) == "node" && !bytes.Equal(enc, orig) {
			t.Errorf("%s: Encode gives %d bytes that differ from the %d written by protobuf", path, len(enc), len(orig))
		}
		if bytes.Equal(enc, orig) {
			identical++
		}
	}
	t.Logf("%d models re-encode byte for byte", identical)
}

// fullModel sets every field that the decoder keeps, including the
// corner cases of presence: -0 and 0 scalars of their own type, an empty
// raw_data, negative int32 values, a symbolic and an unknown dimension.
func fullModel() *onnx.Model {
	sub := &onnx.Graph{
		Name:  "body",
		Nodes: []*onnx.Node{{OpType: "Identity", Inputs: []string{"a"}, Outputs: []string{"b"}}},
		Outputs: []*onnx.ValueInfo{{Name: "b", HasTensorType: true, ElemType: int32(onnx.DTFloat),
			HasShape: true}},
	}
	tensor := &onnx.Tensor{Name: "t", Dims: []int64{2}, DataType: onnx.DTFloat, FloatData: []float32{1.5, float32(math.Inf(-1))}}
	attrs := []*onnx.Attribute{
		{Name: "f", Type: onnx.AttrFloat, F: float32(math.Copysign(0, -1))},
		{Name: "f0", Type: onnx.AttrFloat},
		{Name: "i", Type: onnx.AttrInt, I: -7},
		{Name: "i0", Type: onnx.AttrInt},
		{Name: "s", Type: onnx.AttrString, S: []byte("SAME_UPPER")},
		{Name: "s0", Type: onnx.AttrString, S: []byte{}},
		{Name: "t", Type: onnx.AttrTensor, T: tensor},
		{Name: "g", Type: onnx.AttrGraph, G: sub},
		{Name: "floats", Type: onnx.AttrFloats, Floats: []float32{0.25, -1, float32(math.NaN())}},
		{Name: "ints", Type: onnx.AttrInts, Ints: []int64{-1, 0, 1 << 40}},
		{Name: "strings", Type: onnx.AttrStrings, Strings: [][]byte{[]byte("a"), {}, []byte("c")}},
		{Name: "tensors", Type: onnx.AttrTensors, Tensors: []*onnx.Tensor{tensor, {Name: "u"}}},
		{Name: "ref", Type: onnx.AttrInt, RefAttrName: "outer"},
		{Name: "untyped", F: 2},
	}
	return &onnx.Model{
		IRVersion: 10, ProducerName: "test", ProducerVersion: "1.0",
		Opsets: []onnx.OpsetID{{Version: 21}, {Domain: "com.microsoft", Version: 1}},
		Graph: &onnx.Graph{
			Name: "full",
			Nodes: []*onnx.Node{
				{Name: "n0", OpType: "Custom", Domain: "com.microsoft",
					Inputs: []string{"x", "", "w"}, Outputs: []string{"y", ""}, Attrs: attrs},
				{OpType: "Relu", Inputs: []string{"y"}, Outputs: []string{"z"}},
			},
			Initializers: []*onnx.Tensor{
				{Name: "w", Dims: []int64{2, 0, 3}, DataType: onnx.DTFloat, Raw: []byte{}},
				{Name: "i32", Dims: []int64{3}, DataType: onnx.DTInt32, Int32Data: []int32{-1, math.MinInt32, math.MaxInt32}},
				{Name: "i64", Dims: []int64{2}, DataType: onnx.DTInt64, Int64Data: []int64{math.MinInt64, math.MaxInt64}},
				{Name: "f64", Dims: []int64{2}, DataType: onnx.DTDouble, DoubleData: []float64{math.Pi, -0.5}},
				{Name: "u64", Dims: []int64{1}, DataType: onnx.DTUint64, Uint64Data: []uint64{math.MaxUint64}},
				{Name: "str", Dims: []int64{2}, DataType: onnx.DTString, StringData: [][]byte{[]byte("x"), {}}},
				{Name: "ext", Dims: []int64{4}, DataType: onnx.DTFloat, DataLocation: 1,
					External: []onnx.KeyValue{{Key: "location", Value: "w.bin"}, {Key: "offset", Value: "64"}, {Key: "length", Value: "16"}}},
				{Name: "seg", Dims: []int64{1}, DataType: onnx.DTFloat, FloatData: []float32{3}, HasSegment: true},
				{Name: "raw", Dims: []int64{1}, DataType: onnx.DTFloat16, Raw: []byte{0x00, 0x3c}},
			},
			Inputs: []*onnx.ValueInfo{
				{Name: "x", HasTensorType: true, ElemType: int32(onnx.DTFloat), HasShape: true,
					Dims: []onnx.Dim{{Param: "batch"}, {Value: 3, HasValue: true}, {}, {Value: 0, HasValue: true}}},
				{Name: "opaque"},
			},
			Outputs:               []*onnx.ValueInfo{{Name: "z", HasTensorType: true, ElemType: int32(onnx.DTFloat)}},
			ValueInfo:             []*onnx.ValueInfo{{Name: "y", HasTensorType: true, HasShape: true}},
			HasSparseInitializers: true,
		},
	}
}

func TestEncodeRoundTripsEveryField(t *testing.T) {
	roundTrip(t, "full model", fullModel())
	roundTrip(t, "model with an empty graph", &onnx.Model{Graph: &onnx.Graph{}})
}

// TestEncodeWireFormat checks the bytes of a small model against an
// encoding spelled out by hand from onnx.proto, with lengths on both sides
// of the one- and two-byte varint boundaries.
func TestEncodeWireFormat(t *testing.T) {
	for _, n := range []int{0, 1, 120, 121, 125, 126, 127, 128, 16370, 16383, 16384, 1 << 21} {
		raw := bytes.Repeat([]byte{0xab}, n)
		m := &onnx.Model{
			IRVersion: 8,
			Opsets:    []onnx.OpsetID{{Version: 17}},
			Graph: &onnx.Graph{Name: "g", Initializers: []*onnx.Tensor{
				{Name: "w", Dims: []int64{int64(n)}, DataType: onnx.DTUint8, Raw: raw},
			}},
		}
		var tensor []byte // TensorProto: dims=1, data_type=2, name=8, raw_data=9
		tensor = protowire.AppendVarint(protowire.AppendTag(tensor, 1, protowire.VarintType), uint64(n))
		tensor = protowire.AppendVarint(protowire.AppendTag(tensor, 2, protowire.VarintType), uint64(onnx.DTUint8))
		tensor = protowire.AppendString(protowire.AppendTag(tensor, 8, protowire.BytesType), "w")
		tensor = protowire.AppendBytes(protowire.AppendTag(tensor, 9, protowire.BytesType), raw)
		var graph []byte // GraphProto: name=2, initializer=5
		graph = protowire.AppendString(protowire.AppendTag(graph, 2, protowire.BytesType), "g")
		graph = protowire.AppendBytes(protowire.AppendTag(graph, 5, protowire.BytesType), tensor)
		var opset []byte // OperatorSetIdProto: domain=1, version=2
		opset = protowire.AppendString(protowire.AppendTag(opset, 1, protowire.BytesType), "")
		opset = protowire.AppendVarint(protowire.AppendTag(opset, 2, protowire.VarintType), 17)
		var want []byte // ModelProto: ir_version=1, graph=7, opset_import=8
		want = protowire.AppendVarint(protowire.AppendTag(want, 1, protowire.VarintType), 8)
		want = protowire.AppendBytes(protowire.AppendTag(want, 7, protowire.BytesType), graph)
		want = protowire.AppendBytes(protowire.AppendTag(want, 8, protowire.BytesType), opset)
		if got := Encode(m); !bytes.Equal(got, want) {
			t.Errorf("raw_data of %d bytes: Encode gives %d bytes, want %d spelled out by hand", n, len(got), len(want))
		}
	}
}

func TestEncodeIsDeterministic(t *testing.T) {
	a, b := TinyResNet(1).Bytes(), TinyResNet(1).Bytes()
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of TinyResNet(1) encode differently (%d and %d bytes)", len(a), len(b))
	}
	if c := TinyResNet(2).Bytes(); bytes.Equal(a, c) {
		t.Errorf("TinyResNet(1) and TinyResNet(2) encode the same: the seed is ignored")
	}
}
