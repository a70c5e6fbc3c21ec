package cuda

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// Module is a loaded PTX module: its kernels were JIT-compiled for the
// device when it loaded.
type Module struct {
	d       *Device
	h       uintptr
	InfoLog string // what the JIT compiler reported besides errors
}

// Function is a kernel (.entry) of a loaded module.
type Function struct {
	d    *Device
	h    uintptr
	Name string
}

// JITError is a module that did not load, with the JIT compiler's error
// log (ptxas messages naming PTX lines).
type JITError struct {
	Err *Error
	Log string
}

func (e *JITError) Error() string {
	if e.Log == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": JIT log: " + e.Log
}

func (e *JITError) Unwrap() error { return e.Err }

// jitOption is a CUjit_option.
type jitOption uint32

// JIT options (values from cuda.h).
const (
	jitInfoLogBuffer       jitOption = 3
	jitInfoLogBufferBytes  jitOption = 4
	jitErrorLogBuffer      jitOption = 5
	jitErrorLogBufferBytes jitOption = 6
	jitLogVerbose          jitOption = 12
)

// jitLogBytes is the size of each JIT log buffer.
const jitLogBytes = 64 << 10

// LoadModule JIT-compiles a PTX module for the device and loads it. A
// module that does not compile gives a *JITError carrying the log.
func (d *Device) LoadModule(ptx []byte) (*Module, error) {
	m := &Module{d: d}
	err := d.do(func() error {
		h, info, err := loadModule(ptx)
		m.h, m.InfoLog = h, info
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// loadModule calls cuModuleLoadDataEx with info and error log buffers.
func loadModule(ptx []byte) (mod uintptr, infoLog string, err error) {
	image := make([]byte, len(ptx)+1) // the driver reads a NUL-terminated image
	copy(image, ptx)
	info := make([]byte, jitLogBytes)
	errs := make([]byte, jitLogBytes)
	options := []jitOption{jitInfoLogBuffer, jitInfoLogBufferBytes, jitErrorLogBuffer, jitErrorLogBufferBytes, jitLogVerbose}
	// optionValues is an array of void*: buffer addresses, and sizes and
	// flags stored as pointer-sized integers. The buffers are Go heap
	// memory, which does not move, kept alive below.
	values := []uintptr{
		uintptr(unsafe.Pointer(&info[0])), uintptr(len(info)),
		uintptr(unsafe.Pointer(&errs[0])), uintptr(len(errs)),
		1,
	}
	r := drv.moduleLoadDataEx(&mod, &image[0], uint32(len(options)), &options[0], &values[0])
	runtime.KeepAlive(info)
	runtime.KeepAlive(errs)
	runtime.KeepAlive(image)
	infoLog = strings.TrimSpace(cStringIn(info))
	if r != success {
		log := strings.TrimSpace(cStringIn(errs))
		return 0, infoLog, &JITError{Err: newError("cuModuleLoadDataEx", r), Log: log}
	}
	return mod, infoLog, nil
}

// Function looks up a kernel by its .entry name.
func (m *Module) Function(name string) (Function, error) {
	f := Function{d: m.d, Name: name}
	err := m.d.do(func() error {
		if r := drv.moduleGetFunction(&f.h, m.h, name); r != success {
			return fmt.Errorf("kernel %q: %w", name, newError("cuModuleGetFunction", r))
		}
		return nil
	})
	return f, err
}

// Unload unloads the module; its functions become invalid.
func (m *Module) Unload() error {
	if m == nil || m.h == 0 {
		return nil
	}
	err := m.d.do(func() error { return check("cuModuleUnload", drv.moduleUnload(m.h)) })
	m.h = 0
	return err
}

// FuncAttribute is a CUfunction_attribute.
type FuncAttribute int32

// Function attributes (values from cuda.h).
const (
	FuncMaxThreadsPerBlock FuncAttribute = 0
	FuncStaticSharedBytes  FuncAttribute = 1
	FuncLocalBytes         FuncAttribute = 3
	FuncNumRegs            FuncAttribute = 4
	FuncPTXVersion         FuncAttribute = 5
	FuncBinaryVersion      FuncAttribute = 6
	FuncMaxDynamicShared   FuncAttribute = 8
	FuncPreferredCarveout  FuncAttribute = 9
)

// Attribute returns an attribute of the compiled kernel.
func (f Function) Attribute(a FuncAttribute) (int, error) {
	var v int32
	err := f.d.do(func() error { return check("cuFuncGetAttribute", drv.funcGetAttribute(&v, a, f.h)) })
	return int(v), err
}

// SetMaxDynamicShared lets the kernel launch with up to bytes of dynamic
// shared memory; above 48 KiB a kernel must opt in this way.
func (f Function) SetMaxDynamicShared(bytes int) error {
	return f.d.do(func() error {
		if r := drv.funcSetAttribute(f.h, FuncMaxDynamicShared, int32(bytes)); r != success {
			return fmt.Errorf("kernel %q: %d bytes of dynamic shared memory: %w", f.Name, bytes, newError("cuFuncSetAttribute", r))
		}
		return nil
	})
}

// MaxActiveBlocks is how many blocks of block threads and shared bytes of
// dynamic shared memory each fit on one SM at once (after
// SetMaxDynamicShared where shared is above 48 KiB).
func (f Function) MaxActiveBlocks(block, shared int) (int, error) {
	var n int32
	err := f.d.do(func() error {
		if r := drv.occupancyMaxActiveBlocks(&n, f.h, int32(block), uintptr(shared)); r != success {
			return fmt.Errorf("kernel %q: blocks of %d threads and %d bytes an SM: %w", f.Name, block, shared,
				newError("cuOccupancyMaxActiveBlocksPerMultiprocessor", r))
		}
		return nil
	})
	return int(n), err
}
