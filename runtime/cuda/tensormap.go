package cuda

import (
	"fmt"
	"unsafe"
)

// TensorMap is an encoded CUtensorMap: the opaque 128 bytes the bulk
// tensor copy engine reads to find a tensor and the box it copies.
type TensorMap [128]byte

// TensorMapDesc describes a tensor map over fp16 elements at Addr,
// dimensions innermost first (see artifact.TensorMap).
type TensorMapDesc struct {
	Addr           DevicePtr
	Dims           []uint64
	Strides        []uint64 // bytes, of dimensions 1 .. rank-1
	Box            []uint32 // tiled mode
	ElementStrides []uint32
	Swizzle        int // bytes: 0, 32, 64 or 128
	// Im2col mode where Channels > 0.
	Lower, Upper     []int32
	Channels, Pixels uint32
}

// The driver's enum values (cuda.h, CUDA 12 and 13).
const (
	tensorMapFloat16     = 6 // CU_TENSOR_MAP_DATA_TYPE_FLOAT16
	tensorMapInterleave0 = 0 // CU_TENSOR_MAP_INTERLEAVE_NONE
	tensorMapL2Promote   = 2 // CU_TENSOR_MAP_L2_PROMOTION_L2_128B
	tensorMapOOBZero     = 0 // CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE: out-of-bounds elements read as zero
)

// swizzleEnum is CU_TENSOR_MAP_SWIZZLE_NONE, _32B, _64B or _128B.
func swizzleEnum(bytes int) (uint32, error) {
	switch bytes {
	case 0:
		return 0, nil
	case 32:
		return 1, nil
	case 64:
		return 2, nil
	case 128:
		return 3, nil
	}
	return 0, fmt.Errorf("cuda: tensor map swizzle of %d bytes", bytes)
}

// EncodeTensorMap encodes desc with cuTensorMapEncodeTiled, or
// cuTensorMapEncodeIm2col in im2col mode, on the device's thread (the
// driver wants the device's context current).
func (dev *Device) EncodeTensorMap(desc TensorMapDesc) (TensorMap, error) {
	var m TensorMap
	err := dev.do(func() (err error) {
		m, err = encodeTensorMap(desc)
		return err
	})
	return m, err
}

func encodeTensorMap(d TensorMapDesc) (TensorMap, error) {
	var m TensorMap
	if drv.tensorMapEncodeTiled == nil || drv.tensorMapEncodeIm2col == nil {
		return m, fmt.Errorf("cuda: %s has no cuTensorMapEncodeTiled/Im2col: tensor maps need a CUDA 12 driver", libName)
	}
	rank := len(d.Dims)
	if rank == 0 || len(d.Strides) != rank-1 || len(d.ElementStrides) != rank {
		return m, fmt.Errorf("cuda: tensor map of %d dimensions, %d strides, %d element strides", rank, len(d.Strides), len(d.ElementStrides))
	}
	sw, err := swizzleEnum(d.Swizzle)
	if err != nil {
		return m, err
	}
	// The driver wants the map 64-byte aligned: encode into an aligned
	// window of a larger heap buffer (Go's heap does not move).
	buf := make([]byte, len(m)+64)
	at := (64 - int(uintptr(unsafe.Pointer(&buf[0]))%64)) % 64
	out := buf[at : at+len(m)]
	strides := append(append([]uint64{}, d.Strides...), 0) // never empty
	var r Result
	call := "cuTensorMapEncodeTiled"
	if d.Channels > 0 {
		call = "cuTensorMapEncodeIm2col"
		if rank < 3 || len(d.Lower) != rank-2 || len(d.Upper) != rank-2 {
			return m, fmt.Errorf("cuda: im2col tensor map of %d dimensions with %d lower and %d upper corner values", rank, len(d.Lower), len(d.Upper))
		}
		r = drv.tensorMapEncodeIm2col(&out[0], tensorMapFloat16, uint32(rank), d.Addr, &d.Dims[0], &strides[0],
			&d.Lower[0], &d.Upper[0], d.Channels, d.Pixels, &d.ElementStrides[0],
			tensorMapInterleave0, sw, tensorMapL2Promote, tensorMapOOBZero)
	} else {
		if len(d.Box) != rank {
			return m, fmt.Errorf("cuda: tensor map of %d dimensions with a box of %d", rank, len(d.Box))
		}
		r = drv.tensorMapEncodeTiled(&out[0], tensorMapFloat16, uint32(rank), d.Addr, &d.Dims[0], &strides[0],
			&d.Box[0], &d.ElementStrides[0], tensorMapInterleave0, sw, tensorMapL2Promote, tensorMapOOBZero)
	}
	if err := check(call, r); err != nil {
		return m, fmt.Errorf("%w: dims %v, strides %v, box %v, element strides %v, swizzle %d, corners %v %v, %d channels x %d pixels",
			err, d.Dims, d.Strides, d.Box, d.ElementStrides, d.Swizzle, d.Lower, d.Upper, d.Channels, d.Pixels)
	}
	copy(m[:], out)
	return m, nil
}
