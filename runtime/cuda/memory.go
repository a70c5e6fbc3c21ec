package cuda

import (
	"fmt"
	"unsafe"
)

// DevicePtr is a device address (CUdeviceptr).
type DevicePtr uint64

// Alloc allocates bytes of device memory (at least one byte is allocated).
func (d *Device) Alloc(bytes int64) (DevicePtr, error) {
	if bytes < 0 {
		return 0, fmt.Errorf("cuda: Alloc of %d bytes", bytes)
	}
	var p DevicePtr
	err := d.do(func() error { return check("cuMemAlloc_v2", drv.memAlloc(&p, uintptr(max(bytes, 1)))) })
	return p, err
}

// Free frees memory from Alloc; freeing 0 is a no-op.
func (d *Device) Free(p DevicePtr) error {
	if p == 0 {
		return nil
	}
	return d.do(func() error { return check("cuMemFree_v2", drv.memFree(p)) })
}

// CopyHtoD copies src to device address dst, synchronously.
func (d *Device) CopyHtoD(dst DevicePtr, src []byte) error {
	return d.do(func() error { return copyHtoD(dst, src) })
}

// CopyDtoH copies len(dst) bytes from device address src, synchronously.
func (d *Device) CopyDtoH(dst []byte, src DevicePtr) error {
	return d.do(func() error { return copyDtoH(dst, src) })
}

// Memset sets n bytes at dst to value.
func (d *Device) Memset(dst DevicePtr, value byte, n int64) error {
	if n < 0 {
		return fmt.Errorf("cuda: Memset of %d bytes", n)
	}
	return d.do(func() error { return check("cuMemsetD8_v2", drv.memsetD8(dst, value, uintptr(n))) })
}

func copyHtoD(dst DevicePtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return check("cuMemcpyHtoD_v2", drv.memcpyHtoD(dst, &src[0], uintptr(len(src))))
}

func copyDtoH(dst []byte, src DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	return check("cuMemcpyDtoH_v2", drv.memcpyDtoH(&dst[0], src, uintptr(len(dst))))
}

// Plain is the element types whose memory AsBytes may expose: fixed-size
// numbers with no Go pointers inside.
type Plain interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~float32 | ~float64
}

// AsBytes views a slice's memory as bytes (no copy), for CopyHtoD and
// CopyDtoH of typed host data.
func AsBytes[T Plain](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}
