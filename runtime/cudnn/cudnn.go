// Package cudnn calls cuDNN 9 (libcudnn.so.9) through purego, for the
// layer-by-layer baseline that `cnnc bench --baseline cudnn` measures
// cnnc against. The library is opened at run time: from $CNNC_CUDNN (a
// file), the loader's path, or a Python site-packages nvidia/cudnn/lib
// (where pip's nvidia-cudnn wheels put it), so cnnc builds without cuDNN.
//
// cuDNN runs on the CUDA runtime, which uses the device's primary context:
// the one runtime/cuda makes current on its device thread. Every call here
// must run on that thread, inside cuda.Device.Batch.
package cudnn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libName is the cuDNN 9 library (the shim that loads its sub-libraries).
const libName = "libcudnn.so.9"

// ErrNoLibrary is matched (errors.Is) by Load's error where no cuDNN 9
// library was found.
var ErrNoLibrary = errors.New("cuDNN 9 not found")

type notFoundError struct{ tried []string }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("%v (set CNNC_CUDNN to libcudnn.so.9; tried %s)", ErrNoLibrary, strings.Join(e.tried, ", "))
}
func (e *notFoundError) Is(target error) bool { return target == ErrNoLibrary }

// Status is a cudnnStatus_t.
type Status int32

// Error is a failed cuDNN call: the function and cuDNN's message.
type Error struct {
	Call   string
	Status Status
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cudnn: %s: %s (status %d)", e.Call, e.Msg, e.Status)
}

// Enumerations of cudnn_ops.h and cudnn_cnn.h that cnnc uses.
const (
	formatNCHW = 0

	DataFloat = 0
	DataHalf  = 2

	crossCorrelation = 1
	tensorOpMath     = 1 // CUDNN_TENSOR_OP_MATH: tensor cores where the data type allows
	fmaMath          = 3 // CUDNN_FMA_MATH: FMA kernels only (no TF32, which CUDNN_DEFAULT_MATH permits from sm_80)

	ActSigmoid     = 0
	ActRelu        = 1
	ActTanh        = 2
	ActClippedRelu = 3
	ActIdentity    = 5
	ActSwish       = 6

	notPropagateNaN = 0

	PoolMax            = 0
	PoolAvgIncludePad  = 1
	PoolAvgExcludePad  = 2
	opTensorAdd        = 0
	opTensorMul        = 1
	maxAlgos           = 16
	fwdAlgoPerfBytes   = 48 // sizeof(cudnnConvolutionFwdAlgoPerf_t)
	fwdAlgoPerfMemory  = 16 // offsetof(..., memory)
	fwdAlgoPerfStatus  = 4
	fwdAlgoPerfTimeOff = 8
)

// The library's functions, bound once by Load. Handles and descriptors
// are uintptr, device pointers uint64, scaling factors host pointers to
// float32 (cuDNN reads float for float and half data).
var lib struct {
	getVersion     func() uintptr
	getErrorString func(s Status) *byte
	create         func(h *uintptr) Status
	destroy        func(h uintptr) Status
	setStream      func(h, stream uintptr) Status

	createTensor  func(d *uintptr) Status
	setTensor4d   func(d uintptr, format, dtype, n, c, h, w int32) Status
	destroyTensor func(d uintptr) Status
	createFilter  func(d *uintptr) Status
	setFilter4d   func(d uintptr, dtype, format, k, c, h, w int32) Status
	destroyFilter func(d uintptr) Status
	createConv    func(d *uintptr) Status
	setConv2d     func(d uintptr, padH, padW, strideH, strideW, dilH, dilW, mode, computeType int32) Status
	setConvGroups func(d uintptr, groups int32) Status
	setConvMath   func(d uintptr, math int32) Status
	destroyConv   func(d uintptr) Status
	createAct     func(d *uintptr) Status
	setAct        func(d uintptr, mode, nan int32, coef float64) Status
	destroyAct    func(d uintptr) Status
	createPool    func(d *uintptr) Status
	setPool2d     func(d uintptr, mode, nan, winH, winW, padH, padW, strideH, strideW int32) Status
	destroyPool   func(d uintptr) Status
	createOp      func(d *uintptr) Status
	setOp         func(d uintptr, op, computeType, nan int32) Status
	destroyOp     func(d uintptr) Status

	findConvFwd func(h, x, w, conv, y uintptr, requested int32, returned *int32, perf unsafe.Pointer) Status
	convFwd     func(h uintptr, alpha unsafe.Pointer, x uintptr, xp uint64, w uintptr, wp uint64, conv uintptr, algo int32,
		ws uint64, wsBytes uintptr, beta unsafe.Pointer, y uintptr, yp uint64) Status
	addTensor func(h uintptr, alpha unsafe.Pointer, a uintptr, ap uint64, beta unsafe.Pointer, c uintptr, cp uint64) Status
	actFwd    func(h, act uintptr, alpha unsafe.Pointer, x uintptr, xp uint64, beta unsafe.Pointer, y uintptr, yp uint64) Status
	poolFwd   func(h, pool uintptr, alpha unsafe.Pointer, x uintptr, xp uint64, beta unsafe.Pointer, y uintptr, yp uint64) Status
	opTensor  func(h, op uintptr, alpha1 unsafe.Pointer, a uintptr, ap uint64, alpha2 unsafe.Pointer, b uintptr, bp uint64,
		beta unsafe.Pointer, c uintptr, cp uint64) Status
}

var (
	loadOnce sync.Once
	loadErr  error
	loadedAt string
)

// Load opens cuDNN 9 once and binds its functions; it returns where the
// library was found.
func Load() (string, error) {
	loadOnce.Do(func() { loadedAt, loadErr = load() })
	return loadedAt, loadErr
}

// candidates are the places Load tries, in order.
func candidates() []string {
	var out []string
	if p := os.Getenv("CNNC_CUDNN"); p != "" {
		out = append(out, p)
	}
	out = append(out, libName)
	for _, pattern := range []string{
		"/usr/lib/python3*/site-packages/nvidia/cudnn/lib/" + libName,
		"/usr/local/lib/python3*/site-packages/nvidia/cudnn/lib/" + libName,
		"/usr/local/lib/python3*/dist-packages/nvidia/cudnn/lib/" + libName,
		"/usr/lib/python3/dist-packages/nvidia/cudnn/lib/" + libName,
	} {
		matches, _ := filepath.Glob(pattern)
		out = append(out, matches...)
	}
	if home, err := os.UserHomeDir(); err == nil {
		matches, _ := filepath.Glob(filepath.Join(home, ".local/lib/python3*/site-packages/nvidia/cudnn/lib", libName))
		out = append(out, matches...)
	}
	return out
}

func load() (string, error) {
	var handle uintptr
	var at string
	tried := candidates()
	for _, c := range tried {
		h, err := purego.Dlopen(c, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			handle, at = h, c
			break
		}
	}
	if handle == 0 {
		return "", &notFoundError{tried: tried}
	}
	for _, b := range []struct {
		fn   any
		name string
	}{
		{&lib.getVersion, "cudnnGetVersion"}, {&lib.getErrorString, "cudnnGetErrorString"},
		{&lib.create, "cudnnCreate"}, {&lib.destroy, "cudnnDestroy"}, {&lib.setStream, "cudnnSetStream"},
		{&lib.createTensor, "cudnnCreateTensorDescriptor"}, {&lib.setTensor4d, "cudnnSetTensor4dDescriptor"},
		{&lib.destroyTensor, "cudnnDestroyTensorDescriptor"},
		{&lib.createFilter, "cudnnCreateFilterDescriptor"}, {&lib.setFilter4d, "cudnnSetFilter4dDescriptor"},
		{&lib.destroyFilter, "cudnnDestroyFilterDescriptor"},
		{&lib.createConv, "cudnnCreateConvolutionDescriptor"}, {&lib.setConv2d, "cudnnSetConvolution2dDescriptor"},
		{&lib.setConvGroups, "cudnnSetConvolutionGroupCount"}, {&lib.setConvMath, "cudnnSetConvolutionMathType"},
		{&lib.destroyConv, "cudnnDestroyConvolutionDescriptor"},
		{&lib.createAct, "cudnnCreateActivationDescriptor"}, {&lib.setAct, "cudnnSetActivationDescriptor"},
		{&lib.destroyAct, "cudnnDestroyActivationDescriptor"},
		{&lib.createPool, "cudnnCreatePoolingDescriptor"}, {&lib.setPool2d, "cudnnSetPooling2dDescriptor"},
		{&lib.destroyPool, "cudnnDestroyPoolingDescriptor"},
		{&lib.createOp, "cudnnCreateOpTensorDescriptor"}, {&lib.setOp, "cudnnSetOpTensorDescriptor"},
		{&lib.destroyOp, "cudnnDestroyOpTensorDescriptor"},
		{&lib.findConvFwd, "cudnnFindConvolutionForwardAlgorithm"}, {&lib.convFwd, "cudnnConvolutionForward"},
		{&lib.addTensor, "cudnnAddTensor"}, {&lib.actFwd, "cudnnActivationForward"},
		{&lib.poolFwd, "cudnnPoolingForward"}, {&lib.opTensor, "cudnnOpTensor"},
	} {
		sym, err := purego.Dlsym(handle, b.name)
		if err != nil || sym == 0 {
			return "", fmt.Errorf("cudnn: %s has no %s; cnnc wants cuDNN 9", at, b.name)
		}
		purego.RegisterFunc(b.fn, sym)
	}
	if v := lib.getVersion(); v < 90000 {
		return "", fmt.Errorf("cudnn: %s is cuDNN %d.%d, cnnc wants 9", at, v/10000, v/100%100)
	}
	return at, nil
}

// Version is the loaded library's version, e.g. 90100 for 9.1.0.
func Version() int { return int(lib.getVersion()) }

func check(call string, s Status) error {
	if s == 0 {
		return nil
	}
	msg := "unknown error"
	if p := lib.getErrorString(s); p != nil {
		msg = goString(p)
	}
	return &Error{Call: call, Status: s, Msg: msg}
}

func goString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}
