package onnx

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"cnnc/ir"
)

// externalData reads tensors stored beside the model file. Locations are
// relative to the model's folder and may not leave it.
type externalData struct {
	dir   string
	files map[string]*os.File
}

func (x *externalData) close() {
	for _, f := range x.files {
		f.Close()
	}
}

func (x *externalData) read(t *Tensor, size int64) ([]byte, error) {
	var loc string
	offset, length := int64(0), int64(-1)
	for _, kv := range t.External {
		var err error
		switch kv.Key {
		case "location":
			loc = kv.Value
		case "offset":
			offset, err = strconv.ParseInt(kv.Value, 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.Value, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("external data of %q: bad %s %q", t.Name, kv.Key, kv.Value)
		}
	}
	if loc == "" {
		return nil, fmt.Errorf("external data of %q has no location", t.Name)
	}
	if x.dir == "" {
		return nil, fmt.Errorf("external data of %q: the model was not read from a file, so %q cannot be found", t.Name, loc)
	}
	clean := filepath.Clean(loc)
	if filepath.IsAbs(loc) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("external data of %q: location %q escapes the model's folder", t.Name, loc)
	}
	path := filepath.Join(x.dir, clean)
	if real, err := filepath.EvalSymlinks(path); err == nil {
		base, _ := filepath.EvalSymlinks(x.dir)
		if rel, err := filepath.Rel(base, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("external data of %q: location %q links outside the model's folder", t.Name, loc)
		}
	}
	if length >= 0 && length != size {
		return nil, fmt.Errorf("external data of %q: length %d, want %d bytes for its shape", t.Name, length, size)
	}
	f := x.files[path]
	if f == nil {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, fmt.Errorf("external data of %q: %v", t.Name, err)
		}
		x.files[path] = f
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, offset); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("external data of %q: %s ends before offset %d + %d bytes", t.Name, loc, offset, size)
		}
		return nil, fmt.Errorf("external data of %q: %v", t.Name, err)
	}
	return buf, nil
}

// dtypeOf maps an ONNX element type to the IR's.
func dtypeOf(dt DataType) (ir.DType, error) {
	switch dt {
	case DTFloat:
		return ir.F32, nil
	case DTFloat16:
		return ir.F16, nil
	case DTInt64:
		return ir.I64, nil
	case DTInt32:
		return ir.I32, nil
	case DTBool:
		return ir.Bool, nil
	}
	return ir.InvalidDType, unsupported("element type %s (cnnc handles FLOAT, FLOAT16, INT64, INT32 and BOOL)", dt)
}

// convertTensor turns a decoded TensorProto into IR constant data. Raw data
// is used in place (no copy); typed fields are packed into bytes.
func convertTensor(t *Tensor, ext *externalData) (*ir.Tensor, error) {
	dt, err := dtypeOf(t.DataType)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if t.HasSegment {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, unsupported("segmented tensors"))
	}
	shape := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		if d < 0 || d > ir.MaxElements {
			return nil, fmt.Errorf("tensor %q: dimension %d is %d, want 0..2^40", t.Name, i, d)
		}
		shape[i] = int(d)
	}
	typ := ir.Type{DType: dt, Shape: shape}
	n := typ.Elems()
	if n < 0 {
		return nil, fmt.Errorf("tensor %q: dimensions %v overflow (more than 2^40 elements)", t.Name, t.Dims)
	}
	size := n * int64(dt.Size())
	var raw []byte
	switch {
	case t.DataLocation == 1:
		if raw, err = ext.read(t, size); err != nil {
			return nil, err
		}
	case t.Raw != nil:
		raw = t.Raw
	default:
		if raw, err = packTyped(t, dt, n); err != nil {
			return nil, fmt.Errorf("tensor %q: %v", t.Name, err)
		}
	}
	if int64(len(raw)) != size {
		return nil, fmt.Errorf("tensor %q: %d bytes of data, want %d for %s", t.Name, len(raw), size, typ)
	}
	return &ir.Tensor{Type: typ, Raw: raw}, nil
}

// packTyped packs the typed repeated fields of a TensorProto.
func packTyped(t *Tensor, dt ir.DType, n int64) ([]byte, error) {
	var count int
	switch dt {
	case ir.F32:
		count = len(t.FloatData)
	case ir.I64:
		count = len(t.Int64Data)
	default: // f16, i32 and bool live in int32_data
		count = len(t.Int32Data)
	}
	if int64(count) != n {
		return nil, fmt.Errorf("%d values, want %d", count, n)
	}
	raw := make([]byte, n*int64(dt.Size()))
	for i := 0; i < count; i++ {
		switch dt {
		case ir.F32:
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(t.FloatData[i]))
		case ir.I64:
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(t.Int64Data[i]))
		case ir.I32:
			binary.LittleEndian.PutUint32(raw[4*i:], uint32(t.Int32Data[i]))
		case ir.F16:
			binary.LittleEndian.PutUint16(raw[2*i:], uint16(t.Int32Data[i]))
		case ir.Bool:
			if t.Int32Data[i] != 0 {
				raw[i] = 1
			}
		}
	}
	return raw, nil
}

// ReadTensorFile reads a serialized TensorProto (the .pb files of ONNX test
// data) as IR constant data, with its name.
func ReadTensorFile(path string) (*ir.Tensor, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	t, err := DecodeTensor(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: not a TensorProto: %v", path, err)
	}
	ext := &externalData{dir: filepath.Dir(path), files: map[string]*os.File{}}
	defer ext.close()
	x, err := convertTensor(t, ext)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return x, t.Name, nil
}
