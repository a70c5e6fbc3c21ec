package cuda

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Dim3 is a grid or block shape.
type Dim3 struct{ X, Y, Z int }

func (d Dim3) valid() bool {
	return d.X >= 1 && d.Y >= 1 && d.Z >= 1 && d.X <= math.MaxUint32 && d.Y <= math.MaxUint32 && d.Z <= math.MaxUint32
}

// Params is the kernelParams array of cuLaunchKernel: an array of
// pointers, one per kernel parameter, each to the memory the driver copies
// that parameter from. A parameter has an 8-byte slot (a pointer, a
// 64-bit integer, or a 32-bit value in its low bytes: the driver reads as
// many bytes as the kernel's parameter has), or bytes of its own
// (SetBytes). Both arrays are Go heap memory, which does not move; a
// Params must stay reachable until the launch call returns (launches copy
// the values, so it may be reused after).
type Params struct {
	vals  []uint64
	ptrs  []unsafe.Pointer
	bytes map[int][]byte // parameters passed by value from their own memory (SetBytes)
}

// NewParams makes room for n kernel parameters, all zero.
func NewParams(n int) *Params {
	p := &Params{vals: make([]uint64, n), ptrs: make([]unsafe.Pointer, n)}
	for i := range p.vals {
		p.ptrs[i] = unsafe.Pointer(&p.vals[i])
	}
	return p
}

// PointerParams makes the parameters of a kernel that takes device
// pointers only.
func PointerParams(args ...DevicePtr) *Params {
	p := NewParams(len(args))
	for i, a := range args {
		p.SetPtr(i, a)
	}
	return p
}

// Len is the number of parameters.
func (p *Params) Len() int { return len(p.vals) }

// Values returns a copy of the parameter slots.
func (p *Params) Values() []uint64 { return append([]uint64(nil), p.vals...) }

// set puts v in parameter i's slot (undoing a SetBytes).
func (p *Params) set(i int, v uint64) {
	p.vals[i] = v
	p.ptrs[i] = unsafe.Pointer(&p.vals[i])
	delete(p.bytes, i)
}

// SetPtr sets parameter i to a device pointer.
func (p *Params) SetPtr(i int, v DevicePtr) { p.set(i, uint64(v)) }

// SetU64 sets parameter i to a 64-bit integer.
func (p *Params) SetU64(i int, v uint64) { p.set(i, v) }

// SetU32 sets parameter i to a 32-bit integer (.u32/.s32 parameter).
func (p *Params) SetU32(i int, v uint32) { p.set(i, uint64(v)) }

// SetBytes makes parameter i the bytes of b, a parameter of len(b) bytes
// passed by value (a struct, a tensor map); b must not change until the
// launches that use it have been made.
func (p *Params) SetBytes(i int, b []byte) {
	if len(b) == 0 {
		panic("cuda: SetBytes of no bytes")
	}
	if p.bytes == nil {
		p.bytes = map[int][]byte{}
	}
	p.bytes[i] = b
	p.ptrs[i] = unsafe.Pointer(&b[0])
}

// Bytes is parameter i's bytes where SetBytes set it, else nil.
func (p *Params) Bytes(i int) []byte { return p.bytes[i] }

// SetF32 sets parameter i to a float (.f32 parameter).
func (p *Params) SetF32(i int, v float32) { p.set(i, uint64(math.Float32bits(v))) }

// Launch runs fn on a grid of blocks with shared bytes of dynamic shared
// memory, on stream s, with device pointers as its parameters.
func (d *Device) Launch(fn Function, grid, block Dim3, shared int, s Stream, args ...DevicePtr) error {
	p := PointerParams(args...)
	return d.do(func() error { return launch(fn, grid, block, shared, s, p) })
}

// LaunchParams is Launch with parameters of any kind.
func (d *Device) LaunchParams(fn Function, grid, block Dim3, shared int, s Stream, p *Params) error {
	return d.do(func() error { return launch(fn, grid, block, shared, s, p) })
}

func launch(fn Function, grid, block Dim3, shared int, s Stream, p *Params) error {
	if !grid.valid() || !block.valid() || shared < 0 || shared > math.MaxUint32 {
		return fmt.Errorf("cuda: kernel %q: grid %v, block %v, shared %d bytes", fn.Name, grid, block, shared)
	}
	var kernelParams unsafe.Pointer
	if p != nil && len(p.ptrs) > 0 {
		kernelParams = unsafe.Pointer(&p.ptrs[0])
	}
	r, _, _ := purego.SyscallN(drv.launchKernel, fn.h,
		uintptr(grid.X), uintptr(grid.Y), uintptr(grid.Z),
		uintptr(block.X), uintptr(block.Y), uintptr(block.Z),
		uintptr(shared), uintptr(s), uintptr(kernelParams), 0)
	runtime.KeepAlive(p)
	if res := Result(uint32(r)); res != success { // CUresult is 32 bits of the return register
		return fmt.Errorf("kernel %q: %w", fn.Name, newError("cuLaunchKernel", res))
	}
	return nil
}
