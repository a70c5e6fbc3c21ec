//go:build cgo

package nvml

import (
	"fmt"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Init loads and initializes NVML; pair it with Shutdown.
func Init() error {
	switch r := gonvml.Init(); r {
	case gonvml.SUCCESS:
		return nil
	case gonvml.ERROR_LIBRARY_NOT_FOUND:
		return &unavailable{reason: "libnvidia-ml.so.1 not found"}
	case gonvml.ERROR_DRIVER_NOT_LOADED, gonvml.ERROR_NO_PERMISSION:
		return &unavailable{reason: "nvmlInit: " + gonvml.ErrorString(r)}
	default:
		return fmt.Errorf("nvml: nvmlInit: %s", gonvml.ErrorString(r))
	}
}

// Shutdown releases NVML.
func Shutdown() error { return check("nvmlShutdown", gonvml.Shutdown()) }

func check(call string, r gonvml.Return) error {
	if r == gonvml.SUCCESS {
		return nil
	}
	return fmt.Errorf("nvml: %s: %s", call, gonvml.ErrorString(r))
}

// Device is one GPU as NVML knows it.
type Device struct{ h gonvml.Device }

// DeviceByIndex is NVML's device i (NVML's order: by PCI address, not
// always CUDA's; prefer DeviceByPCIBusID).
func DeviceByIndex(i int) (*Device, error) {
	h, r := gonvml.DeviceGetHandleByIndex(i)
	if err := check("nvmlDeviceGetHandleByIndex", r); err != nil {
		return nil, err
	}
	return &Device{h}, nil
}

// DeviceByPCIBusID finds the device at a PCI address such as CUDA's
// cuDeviceGetPCIBusId reports ("0000:3b:00.0").
func DeviceByPCIBusID(id string) (*Device, error) {
	h, r := gonvml.DeviceGetHandleByPciBusId(id)
	if err := check("nvmlDeviceGetHandleByPciBusId", r); err != nil {
		return nil, fmt.Errorf("%w (bus id %q)", err, id)
	}
	return &Device{h}, nil
}

// Name is the card's name.
func (d *Device) Name() (string, error) {
	s, r := d.h.GetName()
	return s, check("nvmlDeviceGetName", r)
}

// SMClock is the current SM clock in MHz.
func (d *Device) SMClock() (int, error) {
	v, r := d.h.GetClockInfo(gonvml.CLOCK_SM)
	return int(v), check("nvmlDeviceGetClockInfo", r)
}

// MaxSMClock is the highest SM clock the card can run at, in MHz.
func (d *Device) MaxSMClock() (int, error) {
	v, r := d.h.GetMaxClockInfo(gonvml.CLOCK_SM)
	return int(v), check("nvmlDeviceGetMaxClockInfo", r)
}

// Utilization is NVML's GPU busy percentage over its last sample period
// (1/6 s to 1 s depending on the card).
func (d *Device) Utilization() (int, error) {
	u, r := d.h.GetUtilizationRates()
	return int(u.Gpu), check("nvmlDeviceGetUtilizationRates", r)
}

// Sample starts reading Utilization every period until the Sampler stops.
func (d *Device) Sample(period time.Duration) *Sampler { return newSampler(d.Utilization, period) }
