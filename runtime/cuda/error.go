package cuda

import (
	"fmt"
	"unsafe"
)

// Result is a CUresult, the status every driver call returns.
type Result uint32

// The results this package acts on; every other one is reported through
// Error with the driver's name and description.
const (
	success               Result = 0   // CUDA_SUCCESS
	errStubLibrary        Result = 34  // CUDA_ERROR_STUB_LIBRARY: the toolkit's stub, not a driver
	errInsufficientDriver Result = 35  // CUDA_ERROR_INSUFFICIENT_DRIVER
	errNoDevice           Result = 100 // CUDA_ERROR_NO_DEVICE
	// ErrInvalidValue is CUDA_ERROR_INVALID_VALUE: the driver rejects an
	// argument (a tensor map description it cannot encode, say).
	ErrInvalidValue Result = 1
)

// Error is a failed driver call, e.g.
// "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
type Error struct {
	Call string // the driver function
	Code Result
	Name string // the code's name, CUDA_ERROR_...
	Desc string // the driver's description of the code
}

func (e *Error) Error() string { return fmt.Sprintf("cuda: %s: %s (%s)", e.Call, e.Name, e.Desc) }

// errorText names a result; a variable so that tests can stand in for the
// driver.
var errorText = driverErrorText

// newError describes a failed call to the driver function call.
func newError(call string, code Result) *Error {
	name, desc := errorText(code)
	return &Error{Call: call, Code: code, Name: name, Desc: desc}
}

// driverErrorText asks the driver to name a result, falling back to the
// number when no driver is loaded or the driver does not know the code.
func driverErrorText(code Result) (name, desc string) {
	name, desc = fmt.Sprintf("CUresult %d", uint32(code)), "unrecognized error code"
	if !loaded {
		return name, desc
	}
	var p *byte
	if drv.getErrorName(code, &p) == success && p != nil {
		name = cString(p)
	}
	p = nil
	if drv.getErrorString(code, &p) == success && p != nil {
		desc = cString(p)
	}
	return name, desc
}

// cString copies a NUL-terminated C string (driver-owned memory) into Go.
func cString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// check turns a result into an error naming the call, nil on success.
func check(call string, r Result) error {
	if r == success {
		return nil
	}
	return newError(call, r)
}
