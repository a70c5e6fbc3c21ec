// Package cuda calls the CUDA driver API (libcuda.so.1) through purego:
// the library is opened at run time, so the package builds without CUDA
// headers or cgo and reports ErrNoDriver where no driver is installed.
//
// A CUDA context is current per OS thread and Go moves goroutines between
// threads, so every Device owns one goroutine locked to its OS thread that
// makes all of that device's driver calls; the methods of Device hand their
// call to it and wait. Device.Batch runs a whole sequence (a launch list, a
// timing loop) in one hand-off.
package cuda

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ebitengine/purego"
)

// libName is the driver library, the name the NVIDIA driver installs.
const libName = "libcuda.so.1"

// ErrNoDriver is matched (errors.Is) by the error of Open on a machine
// without an NVIDIA driver or without a CUDA device.
var ErrNoDriver = errors.New("no NVIDIA GPU driver found")

// noDriverError says why no driver could be used, in one line.
type noDriverError struct{ reason string }

func (e *noDriverError) Error() string        { return fmt.Sprintf("%v (%s)", ErrNoDriver, e.reason) }
func (e *noDriverError) Is(target error) bool { return target == ErrNoDriver }

// The driver functions, bound once by load. The C signatures are in the
// comments; CUresult is Result, handles are uintptr, CUdevice is int32,
// CUdeviceptr is uint64 and size_t is uintptr.
var drv struct {
	// CUresult cuGetErrorName(CUresult error, const char** pStr)
	getErrorName func(code Result, str **byte) Result
	// CUresult cuGetErrorString(CUresult error, const char** pStr)
	getErrorString func(code Result, str **byte) Result
	// CUresult cuInit(unsigned int Flags)
	init func(flags uint32) Result
	// CUresult cuDriverGetVersion(int* driverVersion)
	driverGetVersion func(version *int32) Result
	// CUresult cuDeviceGetCount(int* count)
	deviceGetCount func(count *int32) Result
	// CUresult cuDeviceGet(CUdevice* device, int ordinal)
	deviceGet func(dev *int32, ordinal int32) Result
	// CUresult cuDeviceGetName(char* name, int len, CUdevice dev)
	deviceGetName func(name *byte, n int32, dev int32) Result
	// CUresult cuDeviceGetPCIBusId(char* pciBusId, int len, CUdevice dev)
	deviceGetPCIBusID func(id *byte, n int32, dev int32) Result
	// CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev)
	deviceGetAttribute func(value *int32, attr Attribute, dev int32) Result
	// CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev)
	deviceTotalMem func(bytes *uintptr, dev int32) Result
	// CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev)
	primaryCtxRetain func(ctx *uintptr, dev int32) Result
	// CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
	primaryCtxRelease func(dev int32) Result
	// CUresult cuCtxSetCurrent(CUcontext ctx)
	ctxSetCurrent func(ctx uintptr) Result
	// CUresult cuCtxSynchronize(void)
	ctxSynchronize func() Result
	// CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize)
	memAlloc func(ptr *DevicePtr, bytes uintptr) Result
	// CUresult cuMemFree_v2(CUdeviceptr dptr)
	memFree func(ptr DevicePtr) Result
	// CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount)
	memcpyHtoD func(dst DevicePtr, src *byte, n uintptr) Result
	// CUresult cuMemcpyDtoH_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount)
	memcpyDtoH func(dst *byte, src DevicePtr, n uintptr) Result
	// CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
	memsetD8 func(dst DevicePtr, value uint8, n uintptr) Result
	// CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
	//                             CUjit_option* options, void** optionValues)
	moduleLoadDataEx func(mod *uintptr, image *byte, n uint32, options *jitOption, values *uintptr) Result
	// CUresult cuModuleUnload(CUmodule hmod)
	moduleUnload func(mod uintptr) Result
	// CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name)
	moduleGetFunction func(fn *uintptr, mod uintptr, name string) Result
	// CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
	funcSetAttribute func(fn uintptr, attr FuncAttribute, value int32) Result
	// CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc)
	funcGetAttribute func(value *int32, attr FuncAttribute, fn uintptr) Result
	// CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* numBlocks, CUfunction func,
	//                                                      int blockSize, size_t dynamicSMemSize)
	occupancyMaxActiveBlocks func(n *int32, fn uintptr, blockSize int32, dynamicShared uintptr) Result
	// CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags)
	streamCreate func(s *Stream, flags uint32) Result
	// CUresult cuStreamDestroy_v2(CUstream hStream)
	streamDestroy func(s Stream) Result
	// CUresult cuStreamSynchronize(CUstream hStream)
	streamSynchronize func(s Stream) Result
	// CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags)
	eventCreate func(e *Event, flags uint32) Result
	// CUresult cuEventDestroy_v2(CUevent hEvent)
	eventDestroy func(e Event) Result
	// CUresult cuEventSynchronize(CUevent hEvent)
	eventSynchronize func(e Event) Result
	// CUresult cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd)
	// (CUDA 12.8+; cuEventElapsedTime before, with the same signature)
	eventElapsedTime func(ms *float32, start, end Event) Result
	// CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
	streamBeginCapture func(s Stream, mode uint32) Result
	// CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph)
	streamEndCapture func(s Stream, g *Graph) Result
	// CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags)
	graphInstantiate func(exec *GraphExec, g Graph, flags uint64) Result
	// CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
	graphExecDestroy func(exec GraphExec) Result
	// CUresult cuGraphDestroy(CUgraph hGraph)
	graphDestroy func(g Graph) Result
	// CUresult cuTensorMapEncodeTiled(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType,
	//     cuuint32_t tensorRank, void* globalAddress, const cuuint64_t* globalDim,
	//     const cuuint64_t* globalStrides, const cuuint32_t* boxDim, const cuuint32_t* elementStrides,
	//     CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
	//     CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill)
	tensorMapEncodeTiled func(m *byte, dtype, rank uint32, addr DevicePtr, dims, strides *uint64,
		box, elemStrides *uint32, interleave, swizzle, l2, oob uint32) Result
	// CUresult cuTensorMapEncodeIm2col(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType,
	//     cuuint32_t tensorRank, void* globalAddress, const cuuint64_t* globalDim,
	//     const cuuint64_t* globalStrides, const int* pixelBoxLowerCorner,
	//     const int* pixelBoxUpperCorner, cuuint32_t channelsPerPixel, cuuint32_t pixelsPerColumn,
	//     const cuuint32_t* elementStrides, CUtensorMapInterleave interleave,
	//     CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill)
	tensorMapEncodeIm2col func(m *byte, dtype, rank uint32, addr DevicePtr, dims, strides *uint64,
		lower, upper *int32, channels, pixels uint32, elemStrides *uint32, interleave, swizzle, l2, oob uint32) Result

	// The calls of timed loops go through purego.SyscallN, which costs a
	// fifth of a reflect-built RegisterFunc call (measured 2.6 us against
	// 12 us per call on a small VM), so that launch overhead stays the
	// driver's own.

	// CUresult cuLaunchKernel(CUfunction f, unsigned gridDimX, gridDimY, gridDimZ,
	//     unsigned blockDimX, blockDimY, blockDimZ, unsigned sharedMemBytes,
	//     CUstream hStream, void** kernelParams, void** extra)
	launchKernel uintptr
	// CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
	eventRecord uintptr
	// CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
	graphLaunch uintptr

	// symbols lists the driver symbols bound, in binding order.
	symbols []string
}

// binding is one driver function: a pointer to the func variable (or to
// the uintptr of a raw one) and the symbol names to try, newest first.
// An optional one may be missing (older drivers): its variable stays nil
// and its callers say what it needs.
type binding struct {
	fn       any
	names    []string
	optional bool
}

func bindings() []binding {
	return []binding{
		{fn: &drv.getErrorName, names: []string{"cuGetErrorName"}},
		{fn: &drv.getErrorString, names: []string{"cuGetErrorString"}},
		{fn: &drv.init, names: []string{"cuInit"}},
		{fn: &drv.driverGetVersion, names: []string{"cuDriverGetVersion"}},
		{fn: &drv.deviceGetCount, names: []string{"cuDeviceGetCount"}},
		{fn: &drv.deviceGet, names: []string{"cuDeviceGet"}},
		{fn: &drv.deviceGetName, names: []string{"cuDeviceGetName"}},
		{fn: &drv.deviceGetPCIBusID, names: []string{"cuDeviceGetPCIBusId"}},
		{fn: &drv.deviceGetAttribute, names: []string{"cuDeviceGetAttribute"}},
		{fn: &drv.deviceTotalMem, names: []string{"cuDeviceTotalMem_v2"}},
		{fn: &drv.primaryCtxRetain, names: []string{"cuDevicePrimaryCtxRetain"}},
		{fn: &drv.primaryCtxRelease, names: []string{"cuDevicePrimaryCtxRelease_v2"}},
		{fn: &drv.ctxSetCurrent, names: []string{"cuCtxSetCurrent"}},
		{fn: &drv.ctxSynchronize, names: []string{"cuCtxSynchronize"}},
		{fn: &drv.memAlloc, names: []string{"cuMemAlloc_v2"}},
		{fn: &drv.memFree, names: []string{"cuMemFree_v2"}},
		{fn: &drv.memcpyHtoD, names: []string{"cuMemcpyHtoD_v2"}},
		{fn: &drv.memcpyDtoH, names: []string{"cuMemcpyDtoH_v2"}},
		{fn: &drv.memsetD8, names: []string{"cuMemsetD8_v2"}},
		{fn: &drv.moduleLoadDataEx, names: []string{"cuModuleLoadDataEx"}},
		{fn: &drv.moduleUnload, names: []string{"cuModuleUnload"}},
		{fn: &drv.moduleGetFunction, names: []string{"cuModuleGetFunction"}},
		{fn: &drv.funcSetAttribute, names: []string{"cuFuncSetAttribute"}},
		{fn: &drv.funcGetAttribute, names: []string{"cuFuncGetAttribute"}},
		{fn: &drv.occupancyMaxActiveBlocks, names: []string{"cuOccupancyMaxActiveBlocksPerMultiprocessor"}},
		{fn: &drv.streamCreate, names: []string{"cuStreamCreate"}},
		{fn: &drv.streamDestroy, names: []string{"cuStreamDestroy_v2"}},
		{fn: &drv.streamSynchronize, names: []string{"cuStreamSynchronize"}},
		{fn: &drv.eventCreate, names: []string{"cuEventCreate"}},
		{fn: &drv.eventDestroy, names: []string{"cuEventDestroy_v2"}},
		{fn: &drv.eventSynchronize, names: []string{"cuEventSynchronize"}},
		{fn: &drv.eventElapsedTime, names: []string{"cuEventElapsedTime_v2", "cuEventElapsedTime"}},
		{fn: &drv.streamBeginCapture, names: []string{"cuStreamBeginCapture_v2"}},
		{fn: &drv.streamEndCapture, names: []string{"cuStreamEndCapture"}},
		{fn: &drv.graphInstantiate, names: []string{"cuGraphInstantiateWithFlags"}},
		{fn: &drv.graphExecDestroy, names: []string{"cuGraphExecDestroy"}},
		{fn: &drv.graphDestroy, names: []string{"cuGraphDestroy"}},
		{fn: &drv.tensorMapEncodeTiled, names: []string{"cuTensorMapEncodeTiled"}, optional: true},
		{fn: &drv.tensorMapEncodeIm2col, names: []string{"cuTensorMapEncodeIm2col"}, optional: true},
		{fn: &drv.launchKernel, names: []string{"cuLaunchKernel"}},
		{fn: &drv.eventRecord, names: []string{"cuEventRecord"}},
		{fn: &drv.graphLaunch, names: []string{"cuGraphLaunch"}},
	}
}

var (
	loadOnce sync.Once
	loadErr  error
	loaded   bool // the functions are bound (cuInit may still have failed)
)

// load opens the driver, binds every function and calls cuInit, once per
// process; later calls return the first outcome.
func load() error {
	loadOnce.Do(func() { loadErr = loadDriver() })
	return loadErr
}

func loadDriver() error {
	lib, err := purego.Dlopen(libName, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		reason := err.Error()
		if !strings.Contains(reason, libName) {
			reason = libName + ": " + reason
		}
		return &noDriverError{reason: reason}
	}
	for _, b := range bindings() {
		sym, name := lookup(lib, b.names)
		if sym == 0 && b.optional {
			continue
		}
		if sym == 0 {
			return fmt.Errorf("cuda: %s has no %s; the NVIDIA driver is too old", libName, strings.Join(b.names, " or "))
		}
		if raw, ok := b.fn.(*uintptr); ok {
			*raw = sym
		} else {
			purego.RegisterFunc(b.fn, sym)
		}
		drv.symbols = append(drv.symbols, name)
	}
	loaded = true
	if r := drv.init(0); r != success {
		err := newError("cuInit", r)
		switch r {
		case errNoDevice, errStubLibrary, errInsufficientDriver:
			return &noDriverError{reason: err.Call + ": " + err.Name + " (" + err.Desc + ")"}
		}
		return err
	}
	return nil
}

// lookup returns the address and name of the first of names that lib
// exports, or 0.
func lookup(lib uintptr, names []string) (uintptr, string) {
	for _, n := range names {
		if sym, err := purego.Dlsym(lib, n); err == nil && sym != 0 {
			return sym, n
		}
	}
	return 0, ""
}

// Symbols returns the driver symbols bound, for reports; nil before a
// successful Open.
func Symbols() []string { return append([]string(nil), drv.symbols...) }

// DriverVersion returns the CUDA version the driver supports, e.g. 13000
// for 13.0.
func DriverVersion() (int, error) {
	if err := load(); err != nil {
		return 0, err
	}
	var v int32
	if r := drv.driverGetVersion(&v); r != success {
		return 0, newError("cuDriverGetVersion", r)
	}
	return int(v), nil
}
