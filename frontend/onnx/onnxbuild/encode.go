// Package onnxbuild writes ONNX models from Go: Encode serializes the
// decoder's types (cnnc/frontend/onnx) back to protobuf, a Builder assembles
// graphs node by node, and generators build real architectures (ResNet-50,
// a small example CNN) with deterministic random weights for tests,
// benchmarks and the CLI's embedded example.
package onnxbuild

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"cnnc/frontend/onnx"
)

// Encode serializes m as a ModelProto, using the field numbers that
// onnx.DecodeModel reads (those of onnx.proto). Fields are written in field
// number order, as protobuf's own serializers do, and repeated scalars are
// packed exactly where onnx.proto declares them packed, so the same model
// always gives the same bytes.
//
// Decoding the result gives back a model equal to m, with these exceptions
// for values the decoder cannot produce: empty non-nil slices come back nil
// (except Raw and S, whose presence is kept), a nil element of Strings or
// StringData comes back empty, and a ValueInfo without HasTensorType loses
// its element type and shape. Fields the decoder drops (doc strings,
// metadata, segment contents) are not in m and so not written.
func Encode(m *onnx.Model) []byte {
	b := make([]byte, 0, encodedSizeHint(m))
	return appendModel(b, m)
}

// encodedSizeHint estimates the encoded size from the bulk data, so that
// a large model is encoded without growing the buffer.
func encodedSizeHint(m *onnx.Model) int {
	n := 4096
	if m.Graph != nil {
		for _, t := range m.Graph.Initializers {
			n += len(t.Raw) + 4*len(t.FloatData) + 10*(len(t.Int64Data)+len(t.Int32Data)) + 64
		}
		n += 256 * len(m.Graph.Nodes)
	}
	return n
}

func appendModel(b []byte, m *onnx.Model) []byte {
	b = appendInt(b, 1, m.IRVersion)
	b = appendString(b, 2, m.ProducerName)
	b = appendString(b, 3, m.ProducerVersion)
	if m.Graph != nil {
		b = appendMessage(b, 7, func(b []byte) []byte { return appendGraph(b, m.Graph) })
	}
	for _, o := range m.Opsets {
		b = appendMessage(b, 8, func(b []byte) []byte {
			b = appendRepeatedString(b, 1, o.Domain) // written even if "", as onnx's helpers do
			return appendVarintField(b, 2, uint64(o.Version))
		})
	}
	return b
}

func appendGraph(b []byte, g *onnx.Graph) []byte {
	for _, n := range g.Nodes {
		b = appendMessage(b, 1, func(b []byte) []byte { return appendNode(b, n) })
	}
	b = appendString(b, 2, g.Name)
	for _, t := range g.Initializers {
		b = appendMessage(b, 5, func(b []byte) []byte { return appendTensor(b, t) })
	}
	for _, v := range g.Inputs {
		b = appendMessage(b, 11, func(b []byte) []byte { return appendValueInfo(b, v) })
	}
	for _, v := range g.Outputs {
		b = appendMessage(b, 12, func(b []byte) []byte { return appendValueInfo(b, v) })
	}
	for _, v := range g.ValueInfo {
		b = appendMessage(b, 13, func(b []byte) []byte { return appendValueInfo(b, v) })
	}
	if g.HasSparseInitializers {
		// The decoder keeps only the field's presence: write an empty
		// SparseTensorProto so that decoding reports it again.
		b = appendBytesField(b, 15, nil)
	}
	return b
}

func appendNode(b []byte, n *onnx.Node) []byte {
	for _, s := range n.Inputs {
		b = appendRepeatedString(b, 1, s) // "" marks a missing optional input
	}
	for _, s := range n.Outputs {
		b = appendRepeatedString(b, 2, s)
	}
	b = appendString(b, 3, n.Name)
	b = appendString(b, 4, n.OpType)
	for _, a := range n.Attrs {
		b = appendMessage(b, 5, func(b []byte) []byte { return appendAttr(b, a) })
	}
	return appendString(b, 7, n.Domain)
}

func appendAttr(b []byte, a *onnx.Attribute) []byte {
	b = appendString(b, 1, a.Name)
	if a.Type == onnx.AttrFloat || math.Float32bits(a.F) != 0 {
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	}
	if a.Type == onnx.AttrInt || a.I != 0 {
		b = appendVarintField(b, 3, uint64(a.I))
	}
	if a.S != nil {
		b = appendBytesField(b, 4, a.S)
	}
	if a.T != nil {
		b = appendMessage(b, 5, func(b []byte) []byte { return appendTensor(b, a.T) })
	}
	if a.G != nil {
		b = appendMessage(b, 6, func(b []byte) []byte { return appendGraph(b, a.G) })
	}
	for _, f := range a.Floats { // proto2 repeated float: unpacked
		b = protowire.AppendTag(b, 7, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(f))
	}
	for _, v := range a.Ints { // proto2 repeated int64: unpacked
		b = appendVarintField(b, 8, uint64(v))
	}
	for _, s := range a.Strings {
		b = appendBytesField(b, 9, s)
	}
	for _, t := range a.Tensors {
		b = appendMessage(b, 10, func(b []byte) []byte { return appendTensor(b, t) })
	}
	b = appendInt(b, 20, int64(a.Type))
	return appendString(b, 21, a.RefAttrName)
}

func appendTensor(b []byte, t *onnx.Tensor) []byte {
	for _, d := range t.Dims { // proto2 repeated int64: unpacked
		b = appendVarintField(b, 1, uint64(d))
	}
	b = appendInt(b, 2, int64(t.DataType))
	if t.HasSegment {
		b = appendBytesField(b, 3, nil) // only presence is decoded
	}
	if len(t.FloatData) > 0 {
		b = appendPacked(b, 4, 4*len(t.FloatData), func(b []byte) []byte {
			for _, f := range t.FloatData {
				b = protowire.AppendFixed32(b, math.Float32bits(f))
			}
			return b
		})
	}
	if len(t.Int32Data) > 0 {
		b = appendPacked(b, 5, -1, func(b []byte) []byte {
			for _, v := range t.Int32Data {
				b = protowire.AppendVarint(b, uint64(int64(v))) // int32: sign-extended
			}
			return b
		})
	}
	for _, s := range t.StringData {
		b = appendBytesField(b, 6, s)
	}
	if len(t.Int64Data) > 0 {
		b = appendPacked(b, 7, -1, func(b []byte) []byte {
			for _, v := range t.Int64Data {
				b = protowire.AppendVarint(b, uint64(v))
			}
			return b
		})
	}
	b = appendString(b, 8, t.Name)
	if t.Raw != nil {
		b = appendBytesField(b, 9, t.Raw)
	}
	if len(t.DoubleData) > 0 {
		b = appendPacked(b, 10, 8*len(t.DoubleData), func(b []byte) []byte {
			for _, f := range t.DoubleData {
				b = protowire.AppendFixed64(b, math.Float64bits(f))
			}
			return b
		})
	}
	if len(t.Uint64Data) > 0 {
		b = appendPacked(b, 11, -1, func(b []byte) []byte {
			for _, v := range t.Uint64Data {
				b = protowire.AppendVarint(b, v)
			}
			return b
		})
	}
	for _, kv := range t.External {
		b = appendMessage(b, 13, func(b []byte) []byte {
			b = appendString(b, 1, kv.Key)
			return appendString(b, 2, kv.Value)
		})
	}
	return appendInt(b, 14, int64(t.DataLocation))
}

// appendValueInfo writes a ValueInfoProto. Only a tensor type is written:
// the decoder keeps no other kind of type.
func appendValueInfo(b []byte, v *onnx.ValueInfo) []byte {
	b = appendString(b, 1, v.Name)
	if !v.HasTensorType {
		return b
	}
	return appendMessage(b, 2, func(b []byte) []byte { // TypeProto
		return appendMessage(b, 1, func(b []byte) []byte { // TypeProto.Tensor
			b = appendInt(b, 1, int64(v.ElemType))
			if !v.HasShape {
				return b
			}
			return appendMessage(b, 2, func(b []byte) []byte { // TensorShapeProto
				for _, d := range v.Dims {
					b = appendMessage(b, 1, func(b []byte) []byte { return appendDim(b, d) })
				}
				return b
			})
		})
	})
}

// appendDim writes one TensorShapeProto.Dimension: dim_value, dim_param, or
// neither for an unknown dimension.
func appendDim(b []byte, d onnx.Dim) []byte {
	if d.HasValue {
		return appendVarintField(b, 1, uint64(d.Value))
	}
	return appendString(b, 2, d.Param)
}

// appendInt writes a varint field unless it is zero, the proto default.
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	return appendVarintField(b, num, uint64(v))
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendString writes a string field unless it is empty, the proto default.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendRepeatedString writes one element of a repeated string field, even
// an empty one.
func appendRepeatedString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendPacked writes a packed repeated field whose payload body appends;
// size is the payload's length when known in advance, or -1.
func appendPacked(b []byte, num protowire.Number, size int, body func([]byte) []byte) []byte {
	if size < 0 {
		return appendMessage(b, num, body)
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	return body(b)
}

// appendMessage writes a length-delimited field whose contents body
// appends. The length is not known until body returns, so one byte is
// reserved for it and the contents are moved up if it needs more; each
// byte is moved at most once per enclosing message, and the length is
// always the shortest varint, as protobuf writes it.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = append(b, 0)
	b = body(b)
	n := len(b) - start - 1
	if w := protowire.SizeVarint(uint64(n)); w > 1 {
		b = append(b, make([]byte, w-1)...)
		copy(b[start+w:], b[start+1:start+1+n])
	}
	protowire.AppendVarint(b[start:start], uint64(n)) // writes in place: cap is enough
	return b
}
