// ONNX protobuf decoding, written by hand against onnx/onnx.proto with
// protowire: no generated code. Only the fields the compiler needs are kept;
// every other field is skipped. Field numbers are those of onnx.proto
// (IR version 14); each message's known fields are listed in its fieldNames
// table below.

package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxDepth bounds how deeply graphs may nest through graph-valued attributes.
const maxDepth = 64

// Model is a decoded ModelProto.
type Model struct {
	IRVersion       int64
	ProducerName    string
	ProducerVersion string
	Opsets          []OpsetID // opset_import
	Graph           *Graph
}

// OpsetID is a decoded OperatorSetIdProto; an empty Domain means "ai.onnx".
type OpsetID struct {
	Domain  string
	Version int64
}

// Graph is a decoded GraphProto.
type Graph struct {
	Name                  string
	Nodes                 []*Node
	Initializers          []*Tensor
	Inputs                []*ValueInfo
	Outputs               []*ValueInfo
	ValueInfo             []*ValueInfo
	HasSparseInitializers bool // sparse_initializer present (unsupported later)
}

// Node is a decoded NodeProto.
type Node struct {
	Name, OpType, Domain string
	Inputs, Outputs      []string
	Attrs                []*Attribute
}

// AttrType is an AttributeProto.AttributeType value.
type AttrType int32

// AttributeProto.AttributeType values.
const (
	AttrUndefined     AttrType = 0
	AttrFloat         AttrType = 1
	AttrInt           AttrType = 2
	AttrString        AttrType = 3
	AttrTensor        AttrType = 4
	AttrGraph         AttrType = 5
	AttrFloats        AttrType = 6
	AttrInts          AttrType = 7
	AttrStrings       AttrType = 8
	AttrTensors       AttrType = 9
	AttrGraphs        AttrType = 10
	AttrSparseTensor  AttrType = 11
	AttrSparseTensors AttrType = 12
	AttrTypeProto     AttrType = 13
	AttrTypeProtos    AttrType = 14
)

var attrTypeNames = [...]string{"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR",
	"GRAPH", "FLOATS", "INTS", "STRINGS", "TENSORS", "GRAPHS", "SPARSE_TENSOR",
	"SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"}

// String returns the onnx.proto name of t, such as "INTS".
func (t AttrType) String() string { return enumName(attrTypeNames[:], "AttrType", int32(t)) }

// Attribute is a decoded AttributeProto. Only the field selected by Type is
// meaningful. S and Strings alias the decoded buffer. GRAPHS, SPARSE_TENSOR(S)
// and TYPE_PROTO(S) payloads are not decoded; Type still reports them.
type Attribute struct {
	Name        string
	Type        AttrType
	F           float32
	I           int64
	S           []byte
	T           *Tensor
	G           *Graph
	Floats      []float32
	Ints        []int64
	Strings     [][]byte
	Tensors     []*Tensor
	RefAttrName string
}

// ValueInfo is a decoded ValueInfoProto, flattened to the tensor type only.
type ValueInfo struct {
	Name          string
	HasTensorType bool  // type.tensor_type present
	ElemType      int32 // TensorProto.DataType
	HasShape      bool  // tensor_type.shape present
	Dims          []Dim
}

// Dim is a decoded TensorShapeProto.Dimension: a value, a symbolic parameter,
// or neither (unknown).
type Dim struct {
	Value    int64
	Param    string
	HasValue bool
}

// DataType is a TensorProto.DataType value.
type DataType int32

// TensorProto.DataType values.
const (
	DTUndefined      DataType = 0
	DTFloat          DataType = 1
	DTUint8          DataType = 2
	DTInt8           DataType = 3
	DTUint16         DataType = 4
	DTInt16          DataType = 5
	DTInt32          DataType = 6
	DTInt64          DataType = 7
	DTString         DataType = 8
	DTBool           DataType = 9
	DTFloat16        DataType = 10
	DTDouble         DataType = 11
	DTUint32         DataType = 12
	DTUint64         DataType = 13
	DTComplex64      DataType = 14
	DTComplex128     DataType = 15
	DTBFloat16       DataType = 16
	DTFloat8E4M3FN   DataType = 17
	DTFloat8E4M3FNUZ DataType = 18
	DTFloat8E5M2     DataType = 19
	DTFloat8E5M2FNUZ DataType = 20
	DTUint4          DataType = 21
	DTInt4           DataType = 22
	DTFloat4E2M1     DataType = 23
	DTFloat8E8M0     DataType = 24
	DTUint2          DataType = 25
	DTInt2           DataType = 26
)

var dataTypeNames = [...]string{"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16",
	"INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32",
	"UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
	"FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
	"FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2"}

// String returns the onnx.proto name of d, such as "FLOAT16".
func (d DataType) String() string { return enumName(dataTypeNames[:], "DataType", int32(d)) }

func enumName(names []string, typ string, v int32) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// Tensor is a decoded TensorProto. Raw and StringData alias the decoded
// buffer; they are never copied.
type Tensor struct {
	Name         string
	Dims         []int64
	DataType     DataType
	Raw          []byte // raw_data; aliases the input buffer, never copied
	FloatData    []float32
	Int32Data    []int32
	Int64Data    []int64
	DoubleData   []float64
	Uint64Data   []uint64
	StringData   [][]byte
	External     []KeyValue // external_data entries
	DataLocation int32      // 0 DEFAULT, 1 EXTERNAL
	HasSegment   bool
}

// KeyValue is a decoded StringStringEntryProto.
type KeyValue struct{ Key, Value string }

// DecodeModel decodes a serialized ModelProto (the bytes of a .onnx file).
// Byte slices in the result alias b, which must not change while the model is
// in use. A model without a graph, or from IR version 3 on without an
// opset_import, is rejected.
func DecodeModel(b []byte) (*Model, error) {
	m := &Model{}
	if err := decodeModel(b, m); err != nil {
		return nil, fmt.Errorf("onnx: decoding %w", err)
	}
	if m.Graph == nil {
		return nil, errors.New("onnx: decoding ModelProto.graph: missing")
	}
	if m.IRVersion >= 3 && len(m.Opsets) == 0 {
		return nil, errors.New("onnx: decoding ModelProto.opset_import: missing (required from IR version 3)")
	}
	return m, nil
}

// DecodeTensor decodes a serialized TensorProto, as in the *.pb files of an
// ONNX test_data_set. Raw and StringData alias b.
func DecodeTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	if err := decodeTensor(b, t); err != nil {
		return nil, fmt.Errorf("onnx: decoding %w", err)
	}
	return t, nil
}

// fieldNames maps the field numbers of one message that the decoder reads to
// their onnx.proto names. A "[]" suffix marks a repeated field whose index is
// reported in errors. Fields not listed are skipped.
type fieldNames map[protowire.Number]string

var (
	modelFields = fieldNames{1: "ir_version", 2: "producer_name",
		3: "producer_version", 7: "graph", 8: "opset_import[]"}
	opsetFields = fieldNames{1: "domain", 2: "version"}
	graphFields = fieldNames{1: "node[]", 2: "name", 5: "initializer[]",
		11: "input[]", 12: "output[]", 13: "value_info[]", 15: "sparse_initializer[]"}
	nodeFields = fieldNames{1: "input[]", 2: "output[]", 3: "name", 4: "op_type",
		5: "attribute[]", 7: "domain"}
	attrFields = fieldNames{1: "name", 2: "f", 3: "i", 4: "s", 5: "t", 6: "g",
		7: "floats", 8: "ints", 9: "strings[]", 10: "tensors[]", 20: "type",
		21: "ref_attr_name"}
	tensorFields = fieldNames{1: "dims", 2: "data_type", 3: "segment",
		4: "float_data", 5: "int32_data", 6: "string_data[]", 7: "int64_data",
		8: "name", 9: "raw_data", 10: "double_data", 11: "uint64_data",
		13: "external_data[]", 14: "data_location"}
	keyValueFields  = fieldNames{1: "key", 2: "value"}
	valueInfoFields = fieldNames{1: "name", 2: "type"}
	// TypeProto: tensor_type and the other members of its value oneof.
	typeFields = fieldNames{1: "tensor_type", 4: "sequence_type", 5: "map_type",
		7: "opaque_type", 8: "sparse_tensor_type", 9: "optional_type"}
	tensorTypeFields = fieldNames{1: "elem_type", 2: "shape"}
	shapeFields      = fieldNames{1: "dim[]"}
	dimFields        = fieldNames{1: "dim_value", 2: "dim_param"}
)

// field is one field of a message, with its value decoded per its wire type.
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64 // varint, fixed32 and fixed64 values
	buf []byte // length-delimited value; aliases the input
}

// fieldError places an error at a message field, e.g. "GraphProto.node[3]".
type fieldError struct {
	at  string
	err error
}

func (e *fieldError) Error() string { return e.at + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// namedError carries a label for the element that failed, such as an
// attribute's name, for the enclosing walk to append to its field path.
type namedError struct {
	label string
	err   error
}

func (e *namedError) Error() string { return e.label + ": " + e.err.Error() }
func (e *namedError) Unwrap() error { return e.err }

func named(label string, err error) error {
	if err == nil || label == "" {
		return err
	}
	return &namedError{label, err}
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(s)
}

// walk decodes the message b, calling fn for every field listed in known and
// skipping the others. Errors are located at msg and the failing field.
func walk(b []byte, msg string, known fieldNames, fn func(f field) error) error {
	var seen [32]int // occurrences per field number, for repeated-field indexes
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return &fieldError{msg, wireError("tag", n)}
		}
		b = b[n:]
		name, ok := known[num]
		if !ok {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				at := fmt.Sprintf("%s field %d", msg, num)
				return &fieldError{at, wireError(wireName(typ)+" value", n)}
			}
			b = b[n:]
			continue
		}
		idx := 0
		if int(num) < len(seen) {
			idx = seen[num]
			seen[num]++
		}
		f, n := consumeValue(num, typ, b)
		err := error(nil)
		if n < 0 {
			err = wireError(wireName(typ)+" value", n)
		} else {
			b = b[n:]
			err = fn(f)
		}
		if err != nil {
			return locate(msg, name, idx, err)
		}
	}
	return nil
}

func locate(msg, name string, idx int, err error) error {
	at := msg + "." + name
	if base, ok := strings.CutSuffix(name, "[]"); ok {
		at = msg + "." + base + "[" + strconv.Itoa(idx) + "]"
	}
	if ne, ok := err.(*namedError); ok {
		at += " " + ne.label
		err = ne.err
	}
	return &fieldError{at, err}
}

func consumeValue(num protowire.Number, typ protowire.Type, b []byte) (field, int) {
	f := field{num: num, typ: typ}
	var n int
	switch typ {
	case protowire.VarintType:
		f.u, n = protowire.ConsumeVarint(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.u = uint64(v)
	case protowire.Fixed64Type:
		f.u, n = protowire.ConsumeFixed64(b)
	case protowire.BytesType:
		f.buf, n = protowire.ConsumeBytes(b)
	default: // groups: skipped here, rejected by the field's handler
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	return f, n
}

func wireError(what string, n int) error {
	err := protowire.ParseError(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated %s: %w", what, err)
	}
	return fmt.Errorf("invalid %s: %w", what, err)
}

var wireNames = [...]string{"varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32"}

func wireName(t protowire.Type) string {
	if int(t) >= 0 && int(t) < len(wireNames) {
		return wireNames[t]
	}
	return "wire type " + strconv.Itoa(int(t))
}

func (f field) want(t protowire.Type) error {
	if f.typ != t {
		return fmt.Errorf("wrong wire type %s, want %s", wireName(f.typ), wireName(t))
	}
	return nil
}

// message checks that f is length-delimited and decodes it with decode.
func message(f field, decode func([]byte) error) error {
	if err := f.want(protowire.BytesType); err != nil {
		return err
	}
	return decode(f.buf)
}

func setString(f field, dst *string) error {
	err := f.want(protowire.BytesType)
	if err == nil {
		*dst = string(f.buf)
	}
	return err
}

func appendString(f field, dst *[]string) error {
	var s string
	err := setString(f, &s)
	if err == nil {
		*dst = append(*dst, s)
	}
	return err
}

func appendBytes(f field, dst *[][]byte) error {
	err := f.want(protowire.BytesType)
	if err == nil {
		*dst = append(*dst, f.buf)
	}
	return err
}

func setVarint[T ~int32 | ~int64](f field, dst *T) error {
	err := f.want(protowire.VarintType)
	if err == nil {
		*dst = T(f.u) // int32 values are sign-extended to 64 bits on the wire
	}
	return err
}

// appendVarints appends one unpacked value or a packed run of varints.
func appendVarints[T ~int32 | ~int64 | ~uint64](f field, dst *[]T) error {
	switch f.typ {
	case protowire.VarintType:
		*dst = append(*dst, T(f.u))
		return nil
	case protowire.BytesType:
	default:
		return fmt.Errorf("wrong wire type %s, want varint or packed", wireName(f.typ))
	}
	count := 0 // one final byte per varint, so count <= len(f.buf)
	for _, c := range f.buf {
		if c < 0x80 {
			count++
		}
	}
	out := slices.Grow(*dst, count)
	for b := f.buf; len(b) > 0; {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return wireError("packed varint", n)
		}
		out = append(out, T(v))
		b = b[n:]
	}
	*dst = out
	return nil
}

func appendFloats(f field, dst *[]float32) error {
	return appendFixed(f, dst, protowire.Fixed32Type, func(u uint64) float32 {
		return math.Float32frombits(uint32(u))
	})
}

func appendDoubles(f field, dst *[]float64) error {
	return appendFixed(f, dst, protowire.Fixed64Type, math.Float64frombits)
}

// appendFixed appends one unpacked value or a packed run of fixed-size values.
func appendFixed[T any](f field, dst *[]T, scalar protowire.Type, conv func(uint64) T) error {
	switch f.typ {
	case scalar:
		*dst = append(*dst, conv(f.u))
		return nil
	case protowire.BytesType:
	default:
		return fmt.Errorf("wrong wire type %s, want %s or packed", wireName(f.typ), wireName(scalar))
	}
	size := 8
	if scalar == protowire.Fixed32Type {
		size = 4
	}
	if len(f.buf)%size != 0 {
		return fmt.Errorf("packed length %d is not a multiple of %d", len(f.buf), size)
	}
	out := slices.Grow(*dst, len(f.buf)/size)
	for b := f.buf; len(b) > 0; b = b[size:] {
		if size == 4 {
			out = append(out, conv(uint64(binary.LittleEndian.Uint32(b))))
		} else {
			out = append(out, conv(binary.LittleEndian.Uint64(b)))
		}
	}
	*dst = out
	return nil
}

func decodeModel(b []byte, m *Model) error {
	return walk(b, "ModelProto", modelFields, func(f field) error {
		switch f.num {
		case 1:
			return setVarint(f, &m.IRVersion)
		case 2:
			return setString(f, &m.ProducerName)
		case 3:
			return setString(f, &m.ProducerVersion)
		case 7:
			if m.Graph == nil {
				m.Graph = &Graph{}
			}
			return message(f, func(b []byte) error { return decodeGraph(b, m.Graph, 0) })
		case 8:
			m.Opsets = append(m.Opsets, OpsetID{})
			op := &m.Opsets[len(m.Opsets)-1]
			return message(f, func(b []byte) error {
				return walk(b, "OperatorSetIdProto", opsetFields, func(f field) error {
					if f.num == 1 {
						return setString(f, &op.Domain)
					}
					return setVarint(f, &op.Version)
				})
			})
		}
		return nil
	})
}

func decodeGraph(b []byte, g *Graph, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("graphs nested more than %d deep", maxDepth)
	}
	return walk(b, "GraphProto", graphFields, func(f field) error {
		switch f.num {
		case 1:
			n := &Node{}
			g.Nodes = append(g.Nodes, n)
			return message(f, func(b []byte) error { return decodeNode(b, n, depth) })
		case 2:
			return setString(f, &g.Name)
		case 5:
			return appendTensor(f, &g.Initializers)
		case 11:
			return appendValueInfo(f, &g.Inputs)
		case 12:
			return appendValueInfo(f, &g.Outputs)
		case 13:
			return appendValueInfo(f, &g.ValueInfo)
		case 15:
			g.HasSparseInitializers = true
			return f.want(protowire.BytesType)
		}
		return nil
	})
}

func decodeNode(b []byte, n *Node, depth int) error {
	err := walk(b, "NodeProto", nodeFields, func(f field) error {
		switch f.num {
		case 1:
			return appendString(f, &n.Inputs)
		case 2:
			return appendString(f, &n.Outputs)
		case 3:
			return setString(f, &n.Name)
		case 4:
			return setString(f, &n.OpType)
		case 5:
			a := &Attribute{}
			n.Attrs = append(n.Attrs, a)
			return message(f, func(b []byte) error { return decodeAttr(b, a, depth) })
		case 7:
			return setString(f, &n.Domain)
		}
		return nil
	})
	label := quoted(n.Name)
	if n.OpType != "" {
		label = strings.TrimSpace(label + " (" + n.OpType + ")")
	}
	return named(label, err)
}

func decodeAttr(b []byte, a *Attribute, depth int) error {
	err := walk(b, "AttributeProto", attrFields, func(f field) error {
		switch f.num {
		case 1:
			return setString(f, &a.Name)
		case 2:
			err := f.want(protowire.Fixed32Type)
			a.F = math.Float32frombits(uint32(f.u))
			return err
		case 3:
			return setVarint(f, &a.I)
		case 4:
			err := f.want(protowire.BytesType)
			a.S = f.buf
			return err
		case 5:
			if a.T == nil {
				a.T = &Tensor{}
			}
			return message(f, func(b []byte) error { return decodeNamedTensor(b, a.T) })
		case 6:
			if a.G == nil {
				a.G = &Graph{}
			}
			return message(f, func(b []byte) error { return decodeGraph(b, a.G, depth+1) })
		case 7:
			return appendFloats(f, &a.Floats)
		case 8:
			return appendVarints(f, &a.Ints)
		case 9:
			return appendBytes(f, &a.Strings)
		case 10:
			return appendTensor(f, &a.Tensors)
		case 20:
			return setVarint(f, &a.Type)
		case 21:
			return setString(f, &a.RefAttrName)
		}
		return nil
	})
	return named(quoted(a.Name), err)
}

func appendTensor(f field, dst *[]*Tensor) error {
	t := &Tensor{}
	*dst = append(*dst, t)
	return message(f, func(b []byte) error { return decodeNamedTensor(b, t) })
}

// decodeNamedTensor decodes a nested TensorProto, labelling errors with its name.
func decodeNamedTensor(b []byte, t *Tensor) error {
	err := decodeTensor(b, t)
	return named(quoted(t.Name), err)
}

func decodeTensor(b []byte, t *Tensor) error {
	return walk(b, "TensorProto", tensorFields, func(f field) error {
		switch f.num {
		case 1:
			return appendVarints(f, &t.Dims)
		case 2:
			return setVarint(f, &t.DataType)
		case 3:
			t.HasSegment = true
			return f.want(protowire.BytesType)
		case 4:
			return appendFloats(f, &t.FloatData)
		case 5:
			return appendVarints(f, &t.Int32Data)
		case 6:
			return appendBytes(f, &t.StringData)
		case 7:
			return appendVarints(f, &t.Int64Data)
		case 8:
			return setString(f, &t.Name)
		case 9:
			err := f.want(protowire.BytesType)
			t.Raw = f.buf
			return err
		case 10:
			return appendDoubles(f, &t.DoubleData)
		case 11:
			return appendVarints(f, &t.Uint64Data)
		case 13:
			t.External = append(t.External, KeyValue{})
			kv := &t.External[len(t.External)-1]
			return message(f, func(b []byte) error {
				return walk(b, "StringStringEntryProto", keyValueFields, func(f field) error {
					if f.num == 1 {
						return setString(f, &kv.Key)
					}
					return setString(f, &kv.Value)
				})
			})
		case 14:
			return setVarint(f, &t.DataLocation)
		}
		return nil
	})
}

func appendValueInfo(f field, dst *[]*ValueInfo) error {
	v := &ValueInfo{}
	*dst = append(*dst, v)
	return message(f, func(b []byte) error {
		err := walk(b, "ValueInfoProto", valueInfoFields, func(f field) error {
			if f.num == 1 {
				return setString(f, &v.Name)
			}
			return message(f, func(b []byte) error { return decodeType(b, v) })
		})
		return named(quoted(v.Name), err)
	})
}

// decodeType decodes a TypeProto into v, keeping only a tensor type. The
// value oneof's last member wins, as in protobuf.
func decodeType(b []byte, v *ValueInfo) error {
	return walk(b, "TypeProto", typeFields, func(f field) error {
		if f.num != 1 {
			*v = ValueInfo{Name: v.Name}
			return f.want(protowire.BytesType)
		}
		v.HasTensorType = true
		return message(f, func(b []byte) error {
			return walk(b, "TypeProto.Tensor", tensorTypeFields, func(f field) error {
				if f.num == 1 {
					return setVarint(f, &v.ElemType)
				}
				v.HasShape = true
				return message(f, func(b []byte) error { return decodeShape(b, v) })
			})
		})
	})
}

func decodeShape(b []byte, v *ValueInfo) error {
	return walk(b, "TensorShapeProto", shapeFields, func(f field) error {
		v.Dims = append(v.Dims, Dim{})
		d := &v.Dims[len(v.Dims)-1]
		return message(f, func(b []byte) error {
			return walk(b, "TensorShapeProto.Dimension", dimFields, func(f field) error {
				if f.num == 1 { // dim_value and dim_param are a oneof: last wins
					*d = Dim{HasValue: true}
					return setVarint(f, &d.Value)
				}
				*d = Dim{}
				return setString(f, &d.Param)
			})
		})
	})
}
