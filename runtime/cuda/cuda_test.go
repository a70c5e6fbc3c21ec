package cuda

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"unsafe"
)

// fakeErrorText stands in for cuGetErrorName/cuGetErrorString.
func fakeErrorText(t *testing.T, names map[Result][2]string) {
	t.Helper()
	saved := errorText
	errorText = func(r Result) (string, string) {
		if n, ok := names[r]; ok {
			return n[0], n[1]
		}
		return saved(r)
	}
	t.Cleanup(func() { errorText = saved })
}

func TestErrorFormat(t *testing.T) {
	fakeErrorText(t, map[Result][2]string{2: {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"}})
	err := check("cuMemAlloc_v2", 2)
	if got, want := err.Error(), "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != 2 || ce.Call != "cuMemAlloc_v2" {
		t.Errorf("errors.As: %#v", ce)
	}
	if check("cuInit", success) != nil {
		t.Error("CUDA_SUCCESS is an error")
	}
}

func TestErrorUnknownCode(t *testing.T) {
	// A code no driver knows is named by its number, loaded driver or not.
	got := newError("cuFoo", 12345).Error()
	if want := "cuda: cuFoo: CUresult 12345 (unrecognized error code)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestJITErrorCarriesLog(t *testing.T) {
	fakeErrorText(t, map[Result][2]string{218: {"CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"}})
	log := "ptxas application ptx input, line 12; error   : Unknown symbol '%f9'"
	err := error(&JITError{Err: newError("cuModuleLoadDataEx", 218), Log: log})
	want := "cuda: cuModuleLoadDataEx: CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed): JIT log: " + log
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != 218 {
		t.Errorf("JITError does not unwrap to the driver error: %v", ce)
	}
	if got := (&JITError{Err: newError("cuModuleLoadDataEx", 218)}).Error(); strings.Contains(got, "JIT log") {
		t.Errorf("empty log printed: %q", got)
	}
}

func TestNoDriverError(t *testing.T) {
	err := error(&noDriverError{reason: "libcuda.so.1: cannot open shared object file"})
	if !errors.Is(err, ErrNoDriver) {
		t.Error("not ErrNoDriver")
	}
	if want := "no NVIDIA GPU driver found (libcuda.so.1: cannot open shared object file)"; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

// TestOpenWithoutDriver checks the one-line ErrNoDriver on a machine
// without a GPU; on a GPU machine there is nothing to check.
func TestOpenWithoutDriver(t *testing.T) {
	d, err := Open(0)
	if err == nil {
		d.Close()
		t.Skip("a GPU is present")
	}
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("Open without a GPU: %v, want ErrNoDriver", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "no NVIDIA GPU driver found (") || strings.Contains(msg, "\n") {
		t.Errorf("message %q is not one line starting with the sentinel", msg)
	}
	if _, err2 := Open(0); err2 == nil || err2.Error() != msg {
		t.Errorf("second Open: %v, want the same error", err2)
	}
}

func TestParamsPointAtSlots(t *testing.T) {
	p := NewParams(4)
	p.SetPtr(0, 0x7f00_0000_1000)
	p.SetU64(1, math.MaxUint64-1)
	p.SetU32(2, 0xdeadbeef)
	p.SetF32(3, -1.5)
	if p.Len() != 4 || len(p.ptrs) != 4 {
		t.Fatalf("Len %d, %d pointers", p.Len(), len(p.ptrs))
	}
	// What the driver does: read each parameter through its pointer, as
	// many bytes as the kernel's parameter has.
	if got := *(*uint64)(p.ptrs[0]); got != 0x7f00_0000_1000 {
		t.Errorf("pointer param reads %#x", got)
	}
	if got := *(*uint64)(p.ptrs[1]); got != math.MaxUint64-1 {
		t.Errorf("u64 param reads %#x", got)
	}
	if got := *(*uint32)(p.ptrs[2]); got != 0xdeadbeef {
		t.Errorf("u32 param reads %#x", got)
	}
	if got := *(*float32)(p.ptrs[3]); got != -1.5 {
		t.Errorf("f32 param reads %v", got)
	}
	for i := range p.ptrs {
		if p.ptrs[i] != unsafe.Pointer(&p.vals[i]) {
			t.Errorf("pointer %d does not point at slot %d", i, i)
		}
	}
	q := PointerParams(1, 2, 3)
	if v := q.Values(); len(v) != 3 || v[0] != 1 || v[1] != 2 || v[2] != 3 {
		t.Errorf("PointerParams values %v", v)
	}
}

func TestLaunchRejectsBadShapes(t *testing.T) {
	fn := Function{Name: "k000_conv"}
	one := Dim3{1, 1, 1}
	for _, c := range []struct {
		grid, block Dim3
		shared      int
	}{
		{Dim3{0, 1, 1}, one, 0},
		{one, Dim3{32, 0, 1}, 0},
		{one, one, -1},
		{Dim3{1 << 33, 1, 1}, one, 0},
	} {
		// The driver is never reached: these fail before the call.
		err := launch(fn, c.grid, c.block, c.shared, 0, nil)
		if err == nil || !strings.Contains(err.Error(), `kernel "k000_conv"`) {
			t.Errorf("launch(grid %v, block %v, shared %d) = %v, want an error naming the kernel", c.grid, c.block, c.shared, err)
		}
	}
}

func TestAsBytes(t *testing.T) {
	f := []float32{1, -2.5, float32(math.Inf(1))}
	b := AsBytes(f)
	if len(b) != 12 {
		t.Fatalf("%d bytes", len(b))
	}
	for i, v := range f {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])); got != v {
			t.Errorf("element %d reads %v, want %v", i, got, v)
		}
	}
	b[0] ^= 1 // a view, not a copy: a DtoH copy into it fills f
	if f[0] == 1 {
		t.Error("AsBytes copied")
	}
	if AsBytes([]float32(nil)) != nil {
		t.Error("AsBytes(nil) not nil")
	}
}

func TestBatchOutsideItsCall(t *testing.T) {
	b := &Batch{}
	if err := b.Launch(Function{}, Dim3{1, 1, 1}, Dim3{1, 1, 1}, 0, 0, nil); !errors.Is(err, errBatchOver) {
		t.Errorf("Launch on a finished Batch: %v", err)
	}
	if _, err := b.CreateEvent(); !errors.Is(err, errBatchOver) {
		t.Errorf("CreateEvent on a finished Batch: %v", err)
	}
}
