package runtime

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"cnnc/runtime/cuda"
)

// Timing summarizes repeated GPU timings, in milliseconds.
type Timing struct {
	Kernel string // the kernel, for per-kernel timings
	Iters  int    // how many timed iterations
	Median float64
	Min    float64
	P90    float64
}

// summarizeMs makes a Timing of samples (milliseconds).
func summarizeMs(kernel string, samples []float64) Timing {
	s := slices.Clone(samples)
	slices.Sort(s)
	t := Timing{Kernel: kernel, Iters: len(s)}
	if len(s) == 0 {
		return t
	}
	t.Median, t.Min, t.P90 = median(s), s[0], percentile(s, 90)
	return t
}

// median of sorted values: the middle one, or the mean of the two middle
// ones.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile of sorted values by the nearest-rank method: the smallest
// value with at least p% of the values at or below it.
func percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func checkCounts(warmup, iters int) error {
	if warmup < 0 || iters < 1 {
		return fmt.Errorf("timing: %d warm-up and %d timed iterations; want at least 0 and 1", warmup, iters)
	}
	return nil
}

// TimeEndToEnd times the whole launch list: warmup untimed iterations,
// then iters iterations each between two CUDA events on the executor's
// stream, queued back to back. With graph, an iteration is one launch of
// the list captured as a CUDA graph (captured on first use), which takes
// the host's launch overhead out of the time.
func (e *Executor) TimeEndToEnd(warmup, iters int, graph bool) (Timing, error) {
	if err := checkCounts(warmup, iters); err != nil {
		return Timing{}, err
	}
	ms := make([]float64, iters)
	err := e.dev.Batch(func(b *cuda.Batch) (err error) {
		if graph && e.graph == 0 {
			if e.graph, err = b.Capture(e.stream, func() error { return e.enqueue(b) }); err != nil {
				return err
			}
		}
		once := func() error {
			if graph {
				return b.GraphLaunch(e.graph, e.stream)
			}
			return e.enqueue(b)
		}
		for range warmup {
			if err := once(); err != nil {
				return err
			}
		}
		if err := b.SyncStream(e.stream); err != nil {
			return err
		}
		events, err := createEvents(b, 2*iters)
		defer func() { err = errors.Join(err, destroyEvents(b, events)) }()
		if err != nil {
			return err
		}
		for i := range iters {
			if err := b.RecordEvent(events[2*i], e.stream); err != nil {
				return err
			}
			if err := once(); err != nil {
				return err
			}
			if err := b.RecordEvent(events[2*i+1], e.stream); err != nil {
				return err
			}
		}
		if err := b.SyncEvent(events[2*iters-1]); err != nil {
			return err
		}
		for i := range iters {
			if ms[i], err = b.EventElapsed(events[2*i], events[2*i+1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Timing{}, err
	}
	return summarizeMs("", ms), nil
}

// TimeKernels times each launch of the list, in a pass of its own: an
// iteration records an event before the first launch and after every
// launch, so launch i takes the time between events i and i+1. So that a
// kernel shorter than the host's launch overhead is not timed waiting for
// its own launch, each iteration first queues a spin kernel that holds the
// GPU until the host has queued the whole iteration (its length is the
// previous iteration's queueing time, with margin). The result has one
// Timing per launch, in launch-list order.
func (e *Executor) TimeKernels(warmup, iters int) ([]Timing, error) {
	if err := checkCounts(warmup, iters); err != nil {
		return nil, err
	}
	if err := e.loadSpin(); err != nil {
		return nil, err
	}
	n := len(e.launches)
	samples := make([][]float64, n)
	err := e.dev.Batch(func(b *cuda.Batch) (err error) {
		events, err := createEvents(b, n+1)
		defer func() { err = errors.Join(err, destroyEvents(b, events)) }()
		if err != nil {
			return err
		}
		headStart := time.Duration(n)*20*time.Microsecond + 50*time.Microsecond
		for it := range warmup + iters {
			if err := e.spin.hold(b, e.stream, headStart); err != nil {
				return err
			}
			queued := time.Now()
			if err := b.RecordEvent(events[0], e.stream); err != nil {
				return err
			}
			for i, l := range e.launches {
				if err := b.Launch(l.fn, l.grid, l.block, l.shared, e.stream, l.params); err != nil {
					return fmt.Errorf("launch %d: %w", i, err)
				}
				if err := b.RecordEvent(events[i+1], e.stream); err != nil {
					return err
				}
			}
			headStart = nextHeadStart(time.Since(queued))
			if err := b.SyncEvent(events[n]); err != nil {
				return err
			}
			if it < warmup {
				continue
			}
			for i := range n {
				ms, err := b.EventElapsed(events[i], events[i+1])
				if err != nil {
					return err
				}
				samples[i] = append(samples[i], ms)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Timing, n)
	for i, l := range e.launches {
		out[i] = summarizeMs(l.fn.Name, samples[i])
	}
	return out, nil
}

// nextHeadStart is how long the spin kernel should hold the GPU, given how
// long the host took to queue the last iteration: half as long again plus
// 20 us, within [10 us, 100 ms].
func nextHeadStart(queued time.Duration) time.Duration {
	d := queued*3/2 + 20*time.Microsecond
	return min(max(d, 10*time.Microsecond), 100*time.Millisecond)
}

func createEvents(b *cuda.Batch, n int) ([]cuda.Event, error) {
	events := make([]cuda.Event, 0, n)
	for range n {
		ev, err := b.CreateEvent()
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
	return events, nil
}

func destroyEvents(b *cuda.Batch, events []cuda.Event) error {
	var errs []error
	for _, ev := range events {
		errs = append(errs, b.DestroyEvent(ev))
	}
	return errors.Join(errs...)
}
