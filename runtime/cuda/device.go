package cuda

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Device is one GPU with its primary context, current on the OS thread
// of the device's own goroutine, which makes every driver call for it.
// Its methods are safe for concurrent use; calls run one at a time.
type Device struct {
	Ordinal int

	dev     int32 // CUdevice
	ctx     uintptr
	calls   chan call
	release func() error // run on the thread by Close

	mu     sync.RWMutex // read-held by calls in flight, write-held by Close
	closed bool
}

// call is one piece of work for the device's thread.
type call struct {
	f    func() error
	done chan<- outcome
}

// outcome is what a call returned, or the value it panicked with.
type outcome struct {
	err      error
	panicked bool
	panicVal any
}

var errClosed = errors.New("cuda: device is closed")

// Count is how many CUDA devices the driver sees.
func Count() (int, error) {
	if err := load(); err != nil {
		return 0, err
	}
	var n int32
	if r := drv.deviceGetCount(&n); r != success {
		return 0, newError("cuDeviceGetCount", r)
	}
	return int(n), nil
}

// Open starts device ordinal: it loads the driver, retains the device's
// primary context and makes it current on the device's thread. Without a
// driver or a device the error matches ErrNoDriver.
func Open(ordinal int) (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	var n int32
	if r := drv.deviceGetCount(&n); r != success {
		return nil, newError("cuDeviceGetCount", r)
	}
	if n == 0 {
		return nil, &noDriverError{reason: "the driver sees no CUDA device"}
	}
	if ordinal < 0 || ordinal >= int(n) {
		return nil, fmt.Errorf("cuda: no device %d; this machine has %d (0 to %d)", ordinal, n, n-1)
	}
	d := &Device{Ordinal: ordinal}
	if err := d.start(d.attach, d.detach); err != nil {
		return nil, err
	}
	return d, nil
}

// start starts the device's goroutine, which runs attach on its thread
// first; Close runs release there last.
func (d *Device) start(attach, release func() error) error {
	d.calls, d.release = make(chan call), release
	ready := make(chan error)
	go d.serve(attach, ready)
	return <-ready
}

// serve is the device's goroutine: it locks itself to an OS thread,
// attaches (makes the context current there) and runs calls until Close.
// It unlocks before it returns so that the thread goes back to Go's pool:
// a locked goroutine that exits makes Go destroy its thread, and in a cgo
// build making purego calls that crashed the process (SIGSEGV entering a
// new thread, every run of TestDeviceThreadsEndCleanly; compare
// golang/go#80723), never when unlocked.
func (d *Device) serve(attach func() error, ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := attach()
	ready <- err
	if err != nil {
		return
	}
	for c := range d.calls {
		c.done <- run(c.f)
	}
}

func (d *Device) attach() error {
	if r := drv.deviceGet(&d.dev, int32(d.Ordinal)); r != success {
		return newError("cuDeviceGet", r)
	}
	if r := drv.primaryCtxRetain(&d.ctx, d.dev); r != success {
		return newError("cuDevicePrimaryCtxRetain", r)
	}
	if r := drv.ctxSetCurrent(d.ctx); r != success {
		drv.primaryCtxRelease(d.dev)
		return newError("cuCtxSetCurrent", r)
	}
	return nil
}

// detach synchronizes, unbinds the context from the thread (which Go
// reuses afterwards) and releases the primary context.
func (d *Device) detach() error {
	return errors.Join(
		check("cuCtxSynchronize", drv.ctxSynchronize()),
		check("cuCtxSetCurrent", drv.ctxSetCurrent(0)),
		check("cuDevicePrimaryCtxRelease_v2", drv.primaryCtxRelease(d.dev)))
}

// run calls f, turning a panic into an outcome for the caller's goroutine.
func run(f func() error) (o outcome) {
	defer func() {
		if v := recover(); v != nil {
			o = outcome{panicked: true, panicVal: v}
		}
	}()
	return outcome{err: f()}
}

// do runs f on the device's thread and waits for it. A panic in f is
// raised again in the caller. f must not call methods of d (it would wait
// for itself): use Batch for sequences.
func (d *Device) do(f func() error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return errClosed
	}
	done := make(chan outcome, 1)
	d.calls <- call{f, done}
	o := <-done
	if o.panicked {
		panic(o.panicVal)
	}
	return o.err
}

// Close waits for calls in flight, synchronizes the context, releases the
// primary context (freeing what is still allocated in it once no other
// Device holds it) and ends the device's goroutine. Closing twice is a
// no-op.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	done := make(chan outcome, 1)
	d.calls <- call{d.release, done}
	o := <-done
	close(d.calls)
	if o.panicked {
		panic(o.panicVal)
	}
	return o.err
}

// Name is the card's name, e.g. "NVIDIA H100 80GB HBM3".
func (d *Device) Name() (string, error) {
	buf := make([]byte, 256)
	err := d.do(func() error { return check("cuDeviceGetName", drv.deviceGetName(&buf[0], int32(len(buf)), d.dev)) })
	return cStringIn(buf), err
}

// PCIBusID is the card's PCI address, domain:bus:device.function, the key
// NVML also knows the card by.
func (d *Device) PCIBusID() (string, error) {
	buf := make([]byte, 64)
	err := d.do(func() error {
		return check("cuDeviceGetPCIBusId", drv.deviceGetPCIBusID(&buf[0], int32(len(buf)), d.dev))
	})
	return cStringIn(buf), err
}

// cStringIn is the NUL-terminated string at the start of buf.
func cStringIn(buf []byte) string {
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return string(buf)
}

// Attribute is a CUdevice_attribute.
type Attribute int32

// Device attributes used by cnnc (values from cuda.h).
const (
	AttrMaxThreadsPerBlock     Attribute = 1
	AttrMaxSharedPerBlock      Attribute = 8
	AttrWarpSize               Attribute = 10
	AttrClockRateKHz           Attribute = 13
	AttrMultiprocessorCount    Attribute = 16
	AttrMemoryClockRateKHz     Attribute = 36
	AttrGlobalMemoryBusWidth   Attribute = 37
	AttrL2CacheSize            Attribute = 38
	AttrMaxThreadsPerSM        Attribute = 39
	AttrComputeCapabilityMajor Attribute = 75
	AttrComputeCapabilityMinor Attribute = 76
	AttrMaxSharedPerSM         Attribute = 81
	AttrMaxRegistersPerSM      Attribute = 82
	AttrMaxSharedPerBlockOptin Attribute = 97
	AttrMaxBlocksPerSM         Attribute = 106
)

// Attribute returns a device attribute.
func (d *Device) Attribute(a Attribute) (int, error) {
	var v int32
	err := d.do(func() error { return check("cuDeviceGetAttribute", drv.deviceGetAttribute(&v, a, d.dev)) })
	return int(v), err
}

// ComputeCapability returns the major and minor compute capability, 9 and
// 0 for an H100.
func (d *Device) ComputeCapability() (major, minor int, err error) {
	if major, err = d.Attribute(AttrComputeCapabilityMajor); err != nil {
		return 0, 0, err
	}
	minor, err = d.Attribute(AttrComputeCapabilityMinor)
	return major, minor, err
}

// TotalMem is the card's memory in bytes.
func (d *Device) TotalMem() (int64, error) {
	var n uintptr
	err := d.do(func() error { return check("cuDeviceTotalMem_v2", drv.deviceTotalMem(&n, d.dev)) })
	return int64(n), err
}

// Synchronize waits for all work on the device's context.
func (d *Device) Synchronize() error {
	return d.do(func() error { return check("cuCtxSynchronize", drv.ctxSynchronize()) })
}
