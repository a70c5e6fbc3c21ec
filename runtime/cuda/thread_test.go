//go:build linux

package cuda

import (
	"errors"
	"sync"
	"syscall"
	"testing"

	"github.com/ebitengine/purego"
)

// fakeDevice is a Device whose thread attaches to no driver.
func fakeDevice(t *testing.T) *Device {
	t.Helper()
	d := &Device{}
	if err := d.start(func() error { return nil }, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCallsRunOnOneThread is the property the context needs: whatever
// goroutine calls, the work runs on the device's one OS thread.
func TestCallsRunOnOneThread(t *testing.T) {
	d := fakeDevice(t)
	defer d.Close()
	var owner int
	d.do(func() error { owner = syscall.Gettid(); return nil })
	var wg sync.WaitGroup
	var mu sync.Mutex
	threads := map[int]int{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 125; i++ {
				d.do(func() error {
					mu.Lock()
					threads[syscall.Gettid()]++
					mu.Unlock()
					return nil
				})
			}
		}()
	}
	wg.Wait()
	if len(threads) != 1 || threads[owner] != 1000 {
		t.Errorf("1000 calls ran on threads %v, want all on %d", threads, owner)
	}
}

func TestDoReturnsErrorsAndPanics(t *testing.T) {
	d := fakeDevice(t)
	defer d.Close()
	boom := errors.New("boom")
	if err := d.do(func() error { return boom }); err != boom {
		t.Errorf("do returned %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "broken invariant" {
				t.Errorf("recovered %v, want the panic raised on the device thread", r)
			}
		}()
		d.do(func() error { panic("broken invariant") })
	}()
	// The thread survived the panic.
	if err := d.do(func() error { return nil }); err != nil {
		t.Errorf("after a panic: %v", err)
	}
}

func TestClosedDevice(t *testing.T) {
	d := fakeDevice(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Alloc(16); !errors.Is(err, errClosed) {
		t.Errorf("Alloc after Close: %v", err)
	}
	if err := d.Batch(func(*Batch) error { return nil }); !errors.Is(err, errClosed) {
		t.Errorf("Batch after Close: %v", err)
	}
}

func TestBatchRunsOnTheDeviceThread(t *testing.T) {
	d := fakeDevice(t)
	defer d.Close()
	var owner, inBatch int
	d.do(func() error { owner = syscall.Gettid(); return nil })
	var kept *Batch
	err := d.Batch(func(b *Batch) error {
		inBatch, kept = syscall.Gettid(), b
		return b.ok()
	})
	if err != nil || inBatch != owner {
		t.Errorf("Batch ran on thread %d (err %v), want %d", inBatch, err, owner)
	}
	if kept.ok() == nil {
		t.Error("a Batch stays usable after Device.Batch returned")
	}
}

// TestDeviceThreadsEndCleanly opens and closes devices from several
// goroutines while purego calls run. When the device goroutine exited
// still locked to its thread, a cgo build of this test died with SIGSEGV
// in every run.
func TestDeviceThreadsEndCleanly(t *testing.T) {
	lib, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW)
	if err != nil {
		t.Skipf("no libc.so.6: %v", err)
	}
	var getpid func() int32
	purego.RegisterLibFunc(&getpid, lib, "getpid")
	call := func() error { getpid(); return nil }
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				d := &Device{}
				if err := d.start(call, call); err != nil {
					t.Error(err)
					return
				}
				d.do(call)
				getpid()
				d.Close()
			}
		}()
	}
	wg.Wait()
}
