package cuda

import (
	"github.com/ebitengine/purego"
)

// Stream is a CUstream; 0 is the legacy default stream.
type Stream uintptr

// Event is a CUevent, created with timing enabled.
type Event uintptr

// Graph is a captured CUgraph.
type Graph uintptr

// GraphExec is an instantiated graph (CUgraphExec), ready to launch.
type GraphExec uintptr

// captureThreadLocal is CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: during a
// capture only this device's thread is barred from unsafe calls, so other
// devices in the process carry on.
const captureThreadLocal = 1

// CreateStream creates a stream that synchronizes with the legacy default
// stream (CU_STREAM_DEFAULT), so synchronous copies and its work are
// ordered.
func (d *Device) CreateStream() (Stream, error) {
	var s Stream
	err := d.do(func() error { return check("cuStreamCreate", drv.streamCreate(&s, 0)) })
	return s, err
}

// DestroyStream destroys a stream; destroying 0 is a no-op.
func (d *Device) DestroyStream(s Stream) error {
	if s == 0 {
		return nil
	}
	return d.do(func() error { return check("cuStreamDestroy_v2", drv.streamDestroy(s)) })
}

// SyncStream waits for the work queued on s.
func (d *Device) SyncStream(s Stream) error {
	return d.do(func() error { return syncStream(s) })
}

// CreateEvent creates an event that records time (CU_EVENT_DEFAULT).
func (d *Device) CreateEvent() (Event, error) {
	var e Event
	err := d.do(func() error { return check("cuEventCreate", drv.eventCreate(&e, 0)) })
	return e, err
}

// DestroyEvent destroys an event; destroying 0 is a no-op.
func (d *Device) DestroyEvent(e Event) error {
	if e == 0 {
		return nil
	}
	return d.do(func() error { return check("cuEventDestroy_v2", drv.eventDestroy(e)) })
}

// RecordEvent queues e on s.
func (d *Device) RecordEvent(e Event, s Stream) error {
	return d.do(func() error { return recordEvent(e, s) })
}

// SyncEvent waits until e has happened.
func (d *Device) SyncEvent(e Event) error {
	return d.do(func() error { return check("cuEventSynchronize", drv.eventSynchronize(e)) })
}

// EventElapsed is the time from start to end in milliseconds (resolution
// about 0.5 us); both must have happened.
func (d *Device) EventElapsed(start, end Event) (float64, error) {
	var ms float64
	err := d.do(func() (err error) { ms, err = eventElapsed(start, end); return err })
	return ms, err
}

// BeginCapture starts recording the work queued on s into a graph instead
// of running it.
func (d *Device) BeginCapture(s Stream) error {
	return d.do(func() error { return check("cuStreamBeginCapture_v2", drv.streamBeginCapture(s, captureThreadLocal)) })
}

// EndCapture ends a capture and returns the graph recorded.
func (d *Device) EndCapture(s Stream) (Graph, error) {
	var g Graph
	err := d.do(func() error { return check("cuStreamEndCapture", drv.streamEndCapture(s, &g)) })
	return g, err
}

// Instantiate makes a graph launchable.
func (d *Device) Instantiate(g Graph) (GraphExec, error) {
	var e GraphExec
	err := d.do(func() error { return check("cuGraphInstantiateWithFlags", drv.graphInstantiate(&e, g, 0)) })
	return e, err
}

// GraphLaunch queues a whole instantiated graph on s.
func (d *Device) GraphLaunch(e GraphExec, s Stream) error {
	return d.do(func() error { return graphLaunch(e, s) })
}

// DestroyGraph destroys a graph (its instantiations live on); 0 is a
// no-op.
func (d *Device) DestroyGraph(g Graph) error {
	if g == 0 {
		return nil
	}
	return d.do(func() error { return check("cuGraphDestroy", drv.graphDestroy(g)) })
}

// DestroyGraphExec destroys an instantiated graph; 0 is a no-op.
func (d *Device) DestroyGraphExec(e GraphExec) error {
	if e == 0 {
		return nil
	}
	return d.do(func() error { return check("cuGraphExecDestroy", drv.graphExecDestroy(e)) })
}

func syncStream(s Stream) error { return check("cuStreamSynchronize", drv.streamSynchronize(s)) }

func recordEvent(e Event, s Stream) error {
	r, _, _ := purego.SyscallN(drv.eventRecord, uintptr(e), uintptr(s))
	return check("cuEventRecord", Result(uint32(r)))
}

func graphLaunch(e GraphExec, s Stream) error {
	r, _, _ := purego.SyscallN(drv.graphLaunch, uintptr(e), uintptr(s))
	return check("cuGraphLaunch", Result(uint32(r)))
}

func eventElapsed(start, end Event) (float64, error) {
	var ms float32
	if r := drv.eventElapsedTime(&ms, start, end); r != success {
		return 0, newError(elapsedName(), r)
	}
	return float64(ms), nil
}

// elapsedName is the elapsed-time symbol bound, for errors.
func elapsedName() string {
	for _, s := range drv.symbols {
		if s == "cuEventElapsedTime_v2" {
			return s
		}
	}
	return "cuEventElapsedTime"
}
