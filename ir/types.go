// Package ir holds cnnc's graph IR: static-shape SSA values, the op table
// that is the single source of truth for every op, a parseable text form
// and the verifier.
package ir

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DType is the element type of a tensor.
type DType uint8

// Element types. Compute ops work on F32 (and F16 once it is compiled);
// I64 appears only in constants folded from shape computations.
const (
	InvalidDType DType = iota
	F32
	F16
	I64
	I32
	Bool
)

var dtypeNames = [...]string{InvalidDType: "invalid", F32: "f32", F16: "f16", I64: "i64", I32: "i32", Bool: "bool"}
var dtypeSizes = [...]int{InvalidDType: 0, F32: 4, F16: 2, I64: 8, I32: 4, Bool: 1}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	if int(d) < len(dtypeSizes) {
		return dtypeSizes[d]
	}
	return 0
}

// IsFloat reports whether the type holds real numbers that ops compute on.
func (d DType) IsFloat() bool { return d == F32 || d == F16 }

// ParseDType reads a dtype name as printed by String.
func ParseDType(s string) (DType, bool) {
	for i, n := range dtypeNames {
		if n == s && i != int(InvalidDType) {
			return DType(i), true
		}
	}
	return InvalidDType, false
}

// MaxElements bounds the element count of one tensor (2^40), so that sizes
// in bytes never overflow an int64 and a corrupt shape fails early.
const MaxElements = int64(1) << 40

// Type is a tensor type with a static shape. A rank-0 shape is a scalar.
type Type struct {
	DType DType
	Shape []int
}

// Elems is the element count of the type, or -1 if a dimension is negative
// or the count exceeds MaxElements.
func (t Type) Elems() int64 { return ShapeElems(t.Shape) }

// Bytes is the storage size of the type.
func (t Type) Bytes() int64 { return t.Elems() * int64(t.DType.Size()) }

// Rank is the number of dimensions.
func (t Type) Rank() int { return len(t.Shape) }

// Equal reports whether two types have the same dtype and shape.
func (t Type) Equal(u Type) bool { return t.DType == u.DType && ShapeEqual(t.Shape, u.Shape) }

func (t Type) String() string {
	var b strings.Builder
	b.WriteString(t.DType.String())
	b.WriteByte('[')
	for i, d := range t.Shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteByte(']')
	return b.String()
}

// ShapeElems is the product of dims, or -1 on a negative dim or overflow
// past MaxElements.
func ShapeElems(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d == 0 {
			return 0
		}
		if n > MaxElements/int64(d) {
			return -1
		}
		n *= int64(d)
	}
	return n
}

// ShapeEqual reports whether two shapes are identical.
func ShapeEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Strides returns the row-major element strides of shape.
func Strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// Tensor is constant data: a weight blob or a folded constant. Data is kept
// as little-endian bytes of the tensor's dtype so that a model's weights are
// never decoded or copied unless something reads their values.
type Tensor struct {
	Type
	Raw []byte
}

// NewF32 makes an f32 tensor holding a copy of vals.
func NewF32(shape []int, vals []float32) *Tensor {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &Tensor{Type: Type{DType: F32, Shape: append([]int{}, shape...)}, Raw: raw}
}

// NewI64 makes an i64 tensor holding a copy of vals.
func NewI64(shape []int, vals []int64) *Tensor {
	raw := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &Tensor{Type: Type{DType: I64, Shape: append([]int{}, shape...)}, Raw: raw}
}

// Float32s decodes the data as float32 values, converting from the
// tensor's dtype. The result is a fresh slice.
func (t *Tensor) Float32s() []float32 {
	n := int(t.Elems())
	out := make([]float32, n)
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = HalfToFloat(binary.LittleEndian.Uint16(t.Raw[2*i:]))
		}
	case I64:
		for i := range out {
			out[i] = float32(int64(binary.LittleEndian.Uint64(t.Raw[8*i:])))
		}
	case I32:
		for i := range out {
			out[i] = float32(int32(binary.LittleEndian.Uint32(t.Raw[4*i:])))
		}
	case Bool:
		for i := range out {
			if t.Raw[i] != 0 {
				out[i] = 1
			}
		}
	}
	return out
}

// Int64s decodes integer data (i64, i32 or bool) as int64 values.
func (t *Tensor) Int64s() []int64 {
	n := int(t.Elems())
	out := make([]int64, n)
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.Raw[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Raw[4*i:])))
		}
	case Bool:
		for i := range out {
			out[i] = int64(t.Raw[i])
		}
	default:
		for i, v := range t.Float32s() {
			out[i] = int64(v)
		}
	}
	return out
}

// HalfToFloat converts IEEE 754 binary16 bits to float32.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalize
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// FloatToHalf converts a float32 to IEEE 754 binary16 bits, rounding to
// nearest even; out-of-range values become infinities.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // inf or nan
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127+15 >= 0x1f:
		return sign | 0x7c00
	case exp-127+15 <= 0: // subnormal or zero in half
		if exp-127+15 < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - (exp - 127 + 15))
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp-127+15)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is still correct
	}
	return sign | uint16(h)
}
