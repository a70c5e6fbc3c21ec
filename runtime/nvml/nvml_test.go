package nvml

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeReadings returns 0, 10, 20, ... and remembers what it returned.
type fakeReadings struct {
	mu   sync.Mutex
	got  []int
	next int
}

func (f *fakeReadings) read() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.next % 101
	f.next += 10
	f.got = append(f.got, v)
	return v, nil
}

func TestSamplerAverages(t *testing.T) {
	f := &fakeReadings{}
	s := newSampler(f.read, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	u, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := 0
	for _, v := range f.got {
		sum += v
	}
	if u.Samples != len(f.got) || u.Samples < 2 {
		t.Fatalf("%d samples, the reader was called %d times", u.Samples, len(f.got))
	}
	if want := float64(sum) / float64(len(f.got)); u.Percent != want {
		t.Errorf("mean %v, want %v over %v", u.Percent, want, f.got)
	}
	if u.Span < 20*time.Millisecond {
		t.Errorf("span %v", u.Span)
	}
}

func TestSamplerReportsReadErrors(t *testing.T) {
	bad := errors.New("nvml: nvmlDeviceGetUtilizationRates: Not Supported")
	s := newSampler(func() (int, error) { return 0, bad }, time.Millisecond)
	time.Sleep(3 * time.Millisecond)
	if _, err := s.Stop(); err != bad {
		t.Errorf("Stop = %v, want the read error", err)
	}
}

// TestInitWithoutNVML: where libnvidia-ml is missing (or cgo is off), Init
// says so with ErrUnavailable instead of panicking.
func TestInitWithoutNVML(t *testing.T) {
	err := Init()
	if err == nil {
		Shutdown()
		t.Skip("NVML is present")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Init = %v, want ErrUnavailable", err)
	}
	t.Log(err)
}

func TestGPUNVML(t *testing.T) {
	if err := Init(); errors.Is(err, ErrUnavailable) {
		t.Skipf("no NVML: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	defer Shutdown()
	d, err := DeviceByIndex(0)
	if err != nil {
		t.Fatal(err)
	}
	name, err := d.Name()
	if err != nil || name == "" {
		t.Errorf("Name = %q, %v", name, err)
	}
	clock, err := d.SMClock()
	if err != nil || clock <= 0 {
		t.Errorf("SMClock = %d, %v", clock, err)
	}
	top, err := d.MaxSMClock()
	if err != nil || top < clock {
		t.Errorf("MaxSMClock = %d, %v (current %d)", top, err, clock)
	}
	u, err := d.Sample(10 * time.Millisecond).Stop()
	if err != nil || u.Percent < 0 || u.Percent > 100 {
		t.Errorf("utilization %+v, %v", u, err)
	}
	t.Logf("%s: SM clock %d MHz (max %d), busy %.0f%%", name, clock, top, u.Percent)
}
