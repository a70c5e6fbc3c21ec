package cuda

import (
	"errors"
	"fmt"
)

// Batch makes driver calls directly on the device's thread, inside
// Device.Batch: a launch list of hundreds of kernels or a timing loop costs
// one hand-off instead of one per call. A Batch is valid only during the
// function it was passed to, and that function must not call the Device's
// own methods (they would wait for the thread the function is holding).
type Batch struct {
	live bool
}

var errBatchOver = errors.New("cuda: Batch used after Device.Batch returned")

// Batch runs f on the device's thread.
func (d *Device) Batch(f func(b *Batch) error) error {
	return d.do(func() error {
		b := &Batch{live: true}
		defer func() { b.live = false }()
		return f(b)
	})
}

func (b *Batch) ok() error {
	if !b.live {
		return errBatchOver
	}
	return nil
}

// Launch queues fn on s; see Device.Launch.
func (b *Batch) Launch(fn Function, grid, block Dim3, shared int, s Stream, p *Params) error {
	if err := b.ok(); err != nil {
		return err
	}
	return launch(fn, grid, block, shared, s, p)
}

// RecordEvent queues e on s.
func (b *Batch) RecordEvent(e Event, s Stream) error {
	if err := b.ok(); err != nil {
		return err
	}
	return recordEvent(e, s)
}

// SyncEvent waits until e has happened.
func (b *Batch) SyncEvent(e Event) error {
	if err := b.ok(); err != nil {
		return err
	}
	return check("cuEventSynchronize", drv.eventSynchronize(e))
}

// EventElapsed is the time from start to end in milliseconds.
func (b *Batch) EventElapsed(start, end Event) (float64, error) {
	if err := b.ok(); err != nil {
		return 0, err
	}
	return eventElapsed(start, end)
}

// SyncStream waits for the work queued on s.
func (b *Batch) SyncStream(s Stream) error {
	if err := b.ok(); err != nil {
		return err
	}
	return syncStream(s)
}

// GraphLaunch queues an instantiated graph on s.
func (b *Batch) GraphLaunch(e GraphExec, s Stream) error {
	if err := b.ok(); err != nil {
		return err
	}
	return graphLaunch(e, s)
}

// CopyHtoD copies src to dst, synchronously.
func (b *Batch) CopyHtoD(dst DevicePtr, src []byte) error {
	if err := b.ok(); err != nil {
		return err
	}
	return copyHtoD(dst, src)
}

// CopyDtoH copies len(dst) bytes from src, synchronously.
func (b *Batch) CopyDtoH(dst []byte, src DevicePtr) error {
	if err := b.ok(); err != nil {
		return err
	}
	return copyDtoH(dst, src)
}

// Capture records what record queues on s into a graph and instantiates
// it. If record fails the capture is ended and its graph discarded.
func (b *Batch) Capture(s Stream, record func() error) (GraphExec, error) {
	if err := b.ok(); err != nil {
		return 0, err
	}
	if r := drv.streamBeginCapture(s, captureThreadLocal); r != success {
		return 0, newError("cuStreamBeginCapture_v2", r)
	}
	recErr := record()
	var g Graph
	endErr := check("cuStreamEndCapture", drv.streamEndCapture(s, &g))
	if recErr != nil || endErr != nil {
		if g != 0 {
			drv.graphDestroy(g)
		}
		if recErr != nil {
			return 0, fmt.Errorf("while capturing a graph: %w", recErr)
		}
		return 0, endErr
	}
	var exec GraphExec
	r := drv.graphInstantiate(&exec, g, 0)
	drv.graphDestroy(g)
	if r != success {
		return 0, newError("cuGraphInstantiateWithFlags", r)
	}
	return exec, nil
}

// DestroyGraphExec destroys an instantiated graph; see
// Device.DestroyGraphExec.
func (b *Batch) DestroyGraphExec(e GraphExec) error {
	if err := b.ok(); err != nil {
		return err
	}
	if e == 0 {
		return nil
	}
	return check("cuGraphExecDestroy", drv.graphExecDestroy(e))
}

// CreateEvent creates a timing event; see Device.CreateEvent.
func (b *Batch) CreateEvent() (Event, error) {
	if err := b.ok(); err != nil {
		return 0, err
	}
	var e Event
	return e, check("cuEventCreate", drv.eventCreate(&e, 0))
}

// DestroyEvent destroys an event; 0 is a no-op.
func (b *Batch) DestroyEvent(e Event) error {
	if err := b.ok(); err != nil || e == 0 {
		return err
	}
	return check("cuEventDestroy_v2", drv.eventDestroy(e))
}
