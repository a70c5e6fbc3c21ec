// Package tensorfile reads and writes tensors as NumPy .npy files and as
// serialized ONNX TensorProto (.pb) files.
package tensorfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"codeberg.org/sbinet/npyio/npy"

	"cnnc/frontend/onnx"
	"cnnc/ir"
)

// Read reads a tensor from a .npy or .pb file (chosen by extension) as IR
// constant data of its own dtype.
func Read(path string) (*ir.Tensor, error) {
	if strings.EqualFold(filepath.Ext(path), ".pb") {
		t, _, err := onnx.ReadTensorFile(path)
		return t, err
	}
	return ReadNPY(path)
}

// ReadNPY reads a C-order .npy file of float32, float64, float16, int64 or
// int32 elements. float64 is narrowed to f32.
func ReadNPY(path string) (*ir.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := npy.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: not a .npy file: %v", path, err)
	}
	d := r.Header.Descr
	if d.Fortran {
		return nil, fmt.Errorf("%s: Fortran-order arrays are not supported; save with np.ascontiguousarray", path)
	}
	shape := append([]int{}, d.Shape...)
	if ir.ShapeElems(shape) < 0 {
		return nil, fmt.Errorf("%s: shape %v is invalid", path, shape)
	}
	fail := func(err error) (*ir.Tensor, error) { return nil, fmt.Errorf("%s: %v", path, err) }
	switch strings.TrimLeft(strings.Trim(d.Type, "'\""), "<>|=") {
	case "f4":
		var v []float32
		if err := r.Read(&v); err != nil {
			return fail(err)
		}
		return ir.NewF32(shape, v), nil
	case "f8":
		var v []float64
		if err := r.Read(&v); err != nil {
			return fail(err)
		}
		w := make([]float32, len(v))
		for i, x := range v {
			w[i] = float32(x)
		}
		return ir.NewF32(shape, w), nil
	case "i8":
		var v []int64
		if err := r.Read(&v); err != nil {
			return fail(err)
		}
		return ir.NewI64(shape, v), nil
	case "i4":
		var v []int32
		if err := r.Read(&v); err != nil {
			return fail(err)
		}
		w := make([]int64, len(v))
		for i, x := range v {
			w[i] = int64(x)
		}
		return ir.NewI64(shape, w), nil
	}
	return nil, fmt.Errorf("%s: element type %q is not supported (want float32, float64, int64 or int32)", path, d.Type)
}

// EncodeNPY returns f32 data of shape as a version 1.0 .npy file.
func EncodeNPY(shape []int, data []float32) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// Magic (6) + version (2) + length (2) + header + newline, padded to 64.
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	buf := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	b.Write(buf)
	return b.Bytes()
}

// WriteFileAtomic writes data to path through a temporary file in the same
// folder, so that a failure never leaves a partial file behind.
func WriteFileAtomic(path string, data []byte) error {
	return WriteFilesAtomic([]string{path}, [][]byte{data})
}

// WriteFilesAtomic writes several files all or nothing: each goes to a
// temporary file beside it, and the renames happen only once every write
// succeeded.
func WriteFilesAtomic(paths []string, data [][]byte) error {
	var temps []string
	cleanup := func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}
	for i, path := range paths {
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
		if err != nil {
			cleanup()
			return err
		}
		temps = append(temps, tmp.Name())
		_, werr := tmp.Write(data[i])
		if err := tmp.Chmod(0o644); werr == nil {
			werr = err
		}
		if err := tmp.Close(); werr == nil {
			werr = err
		}
		if werr != nil {
			cleanup()
			return werr
		}
	}
	for i, path := range paths {
		if err := os.Rename(temps[i], path); err != nil {
			cleanup()
			return err
		}
	}
	return nil
}
