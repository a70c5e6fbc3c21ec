//go:build !cgo

package nvml

import "time"

// errNoCgo is every answer of a build without cgo: go-nvml needs it.
var errNoCgo = &unavailable{reason: "this cnnc was built without cgo"}

// Init reports that NVML is unavailable.
func Init() error { return errNoCgo }

// Shutdown reports that NVML is unavailable.
func Shutdown() error { return errNoCgo }

// Device is one GPU as NVML knows it; without cgo there are none.
type Device struct{}

// DeviceByIndex reports that NVML is unavailable.
func DeviceByIndex(int) (*Device, error) { return nil, errNoCgo }

// DeviceByPCIBusID reports that NVML is unavailable.
func DeviceByPCIBusID(string) (*Device, error) { return nil, errNoCgo }

// Name reports that NVML is unavailable.
func (*Device) Name() (string, error) { return "", errNoCgo }

// SMClock reports that NVML is unavailable.
func (*Device) SMClock() (int, error) { return 0, errNoCgo }

// MaxSMClock reports that NVML is unavailable.
func (*Device) MaxSMClock() (int, error) { return 0, errNoCgo }

// Utilization reports that NVML is unavailable.
func (*Device) Utilization() (int, error) { return 0, errNoCgo }

// Sample returns a sampler whose Stop reports that NVML is unavailable.
func (d *Device) Sample(period time.Duration) *Sampler { return newSampler(d.Utilization, period) }
