// Package nvml reads what NVML (libnvidia-ml.so.1) knows of a GPU that the
// driver API does not: clocks and NVML's "GPU utilization", the share of
// time a kernel was running. It wraps github.com/NVIDIA/go-nvml, which
// needs cgo: a build without cgo gets errors matching ErrUnavailable.
package nvml

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrUnavailable is matched (errors.Is) by the errors of Init when NVML
// cannot be used: no libnvidia-ml, no driver, or a build without cgo.
var ErrUnavailable = errors.New("NVML not available")

// unavailable says why NVML cannot be used.
type unavailable struct{ reason string }

func (e *unavailable) Error() string        { return fmt.Sprintf("%v (%s)", ErrUnavailable, e.reason) }
func (e *unavailable) Is(target error) bool { return target == ErrUnavailable }

// Utilization is NVML's GPU busy percentage over an interval.
type Utilization struct {
	Percent float64       // mean of the samples, 0 to 100
	Samples int           // how many readings the mean is over
	Span    time.Duration // from Start to Stop
}

// Sampler reads a device's utilization periodically in the background
// until Stop.
type Sampler struct {
	read   func() (int, error)
	period time.Duration
	start  time.Time
	stop   chan struct{}
	done   chan struct{}

	mu    sync.Mutex
	sum   float64
	count int
	err   error
}

// newSampler starts reading read every period.
func newSampler(read func() (int, error), period time.Duration) *Sampler {
	s := &Sampler{read: read, period: period, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *Sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.period)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *Sampler) sample() {
	v, err := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.sum += float64(v)
	s.count++
}

// Stop ends sampling, takes one last reading and returns the mean. It is
// an error if no reading succeeded.
func (s *Sampler) Stop() (Utilization, error) {
	close(s.stop)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := Utilization{Samples: s.count, Span: time.Since(s.start)}
	if s.count == 0 {
		if s.err == nil {
			s.err = errors.New("nvml: no utilization sample")
		}
		return u, s.err
	}
	u.Percent = s.sum / float64(s.count)
	return u, nil
}
