// Package costmodel predicts the time of a kernel on a GPU from its FLOPs,
// minimum bytes, launch geometry and tile, and a device profile: compute
// time at the unit's sustained rate and memory time at DRAM bandwidth, the
// larger stretched by wave quantization and tile padding, plus launch
// overhead. Fusion and tiling decisions compare these predictions.
package costmodel

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Profile describes a GPU: datasheet numbers, overridable by a
// calibration measured on the card (`cnnc bench --calibrate`).
type Profile struct {
	Name     string  `json:"name"`
	SM       int     `json:"sm"` // compute capability, 80 or 90
	SMs      int     `json:"sms"`
	ClockMHz float64 `json:"clock_mhz"`
	// Peak rates (datasheet or measured).
	FP32TFLOPS    float64 `json:"fp32_tflops"`
	FP16TCTFLOPS  float64 `json:"fp16_tensor_tflops"`
	DRAMGBs       float64 `json:"dram_gbs"`
	MaxThreadsSM  int     `json:"max_threads_per_sm"`
	MaxBlocksSM   int     `json:"max_blocks_per_sm"`
	RegistersSM   int     `json:"registers_per_sm"`
	SharedBytesSM int     `json:"shared_bytes_per_sm"`
	// What cnnc's kernels reach, as fractions of the peaks: GemmEff of the
	// FP32 peak by the SIMT GEMM core on a problem that fills the card,
	// MemEff of DRAM bandwidth by streaming kernels.
	GemmEff float64 `json:"gemm_efficiency"`
	MemEff  float64 `json:"memory_efficiency"`
	// GemmEffSmall is the GEMM core's efficiency with a 4x4 register tile
	// (two FMAs per shared load); GemmEff is with 8x8 (four).
	GemmEffSmall float64 `json:"gemm_efficiency_4x4"`
	// TensorCoreEff is the tensor-core GEMM core's fraction of the fp16
	// tensor-core peak.
	TensorCoreEff float64 `json:"tensor_core_efficiency"`
	// LaunchUs is the host's interval between back-to-back launches: a
	// kernel shorter than that still takes it. GapUs is what the device
	// adds between kernels that run longer.
	LaunchUs float64 `json:"launch_us"`
	GapUs    float64 `json:"gap_us"`
	// SliceLatencyUs is the shortest a GEMM kernel's K step can take: one
	// global-memory round trip and two barriers, whatever the math.
	SliceLatencyUs float64 `json:"slice_latency_us"`
	// DepthwiseTrips is how many such round trips a K step waits when a
	// depthwise convolution computes the GEMM's operand.
	DepthwiseTrips float64 `json:"depthwise_trips"`
	// Calibrated says the efficiencies were measured on this card.
	Calibrated bool `json:"calibrated"`
}

// Datasheet profiles. Efficiencies are first guesses until calibrated.
var profiles = map[string]Profile{
	"a100": {Name: "A100 SXM4 80GB", SM: 80, SMs: 108, ClockMHz: 1410, FP32TFLOPS: 19.5, FP16TCTFLOPS: 312,
		DRAMGBs: 2039, MaxThreadsSM: 2048, MaxBlocksSM: 32, RegistersSM: 65536, SharedBytesSM: 164 << 10,
		GemmEff: 0.5, GemmEffSmall: 0.35, TensorCoreEff: 0.3, MemEff: 0.8, LaunchUs: 2.5, GapUs: 1.0, SliceLatencyUs: 0.45, DepthwiseTrips: 2},
	"h100": {Name: "H100 SXM5 80GB", SM: 90, SMs: 132, ClockMHz: 1980, FP32TFLOPS: 66.9, FP16TCTFLOPS: 989,
		DRAMGBs: 3350, MaxThreadsSM: 2048, MaxBlocksSM: 32, RegistersSM: 65536, SharedBytesSM: 228 << 10,
		GemmEff: 0.35, GemmEffSmall: 0.25, TensorCoreEff: 0.3, MemEff: 0.8, LaunchUs: 2.0, GapUs: 1.0, SliceLatencyUs: 0.45, DepthwiseTrips: 2},
	"h200": {Name: "H200 SXM 141GB", SM: 90, SMs: 132, ClockMHz: 1980, FP32TFLOPS: 66.9, FP16TCTFLOPS: 989,
		DRAMGBs: 4800, MaxThreadsSM: 2048, MaxBlocksSM: 32, RegistersSM: 65536, SharedBytesSM: 228 << 10,
		GemmEff: 0.35, GemmEffSmall: 0.25, TensorCoreEff: 0.3, MemEff: 0.8, LaunchUs: 2.0, GapUs: 1.0, SliceLatencyUs: 0.45, DepthwiseTrips: 2},
}

// byTarget maps a compile target to the profile used when none is named.
var byTarget = map[string]string{"sm_80": "a100", "sm_86": "a100", "sm_89": "a100", "sm_90": "h100"}

// ProfileNames lists the built-in profiles.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Lookup returns a built-in profile by name ("h100") or by target
// ("sm_90").
func Lookup(name string) (Profile, error) {
	key := strings.ToLower(name)
	if alias, ok := byTarget[key]; ok {
		key = alias
	}
	p, ok := profiles[key]
	if !ok {
		return Profile{}, fmt.Errorf("unknown device profile %q, want one of %s or a target", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// Load reads a calibration file: a JSON profile whose non-zero fields
// override the built-in profile it names.
func Load(path string) (Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, err
	}
	var cal Profile
	if err := json.Unmarshal(data, &cal); err != nil {
		return Profile{}, fmt.Errorf("%s: not a device profile: %v", path, err)
	}
	base, err := Lookup(cal.Name)
	if err != nil {
		base = Profile{}
	}
	merged := base.override(cal)
	if err := merged.validate(); err != nil {
		return Profile{}, fmt.Errorf("%s: %v", path, err)
	}
	return merged, nil
}

// override copies the non-zero fields of o over p.
func (p Profile) override(o Profile) Profile {
	set := func(dst *float64, v float64) {
		if v != 0 {
			*dst = v
		}
	}
	seti := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	if o.Name != "" {
		p.Name = o.Name
	}
	seti(&p.SM, o.SM)
	seti(&p.SMs, o.SMs)
	set(&p.ClockMHz, o.ClockMHz)
	set(&p.FP32TFLOPS, o.FP32TFLOPS)
	set(&p.FP16TCTFLOPS, o.FP16TCTFLOPS)
	set(&p.DRAMGBs, o.DRAMGBs)
	seti(&p.MaxThreadsSM, o.MaxThreadsSM)
	seti(&p.MaxBlocksSM, o.MaxBlocksSM)
	seti(&p.RegistersSM, o.RegistersSM)
	seti(&p.SharedBytesSM, o.SharedBytesSM)
	set(&p.GemmEff, o.GemmEff)
	set(&p.GemmEffSmall, o.GemmEffSmall)
	set(&p.TensorCoreEff, o.TensorCoreEff)
	set(&p.MemEff, o.MemEff)
	set(&p.LaunchUs, o.LaunchUs)
	set(&p.GapUs, o.GapUs)
	set(&p.SliceLatencyUs, o.SliceLatencyUs)
	set(&p.DepthwiseTrips, o.DepthwiseTrips)
	p.Calibrated = p.Calibrated || o.Calibrated
	return p
}

func (p Profile) validate() error {
	if p.SMs <= 0 || p.FP32TFLOPS <= 0 || p.DRAMGBs <= 0 || p.MaxThreadsSM <= 0 || p.MaxBlocksSM <= 0 {
		return fmt.Errorf("profile %q lacks SMs, FP32 peak, DRAM bandwidth or SM limits", p.Name)
	}
	if p.GemmEff <= 0 || p.GemmEff > 1 || p.MemEff <= 0 || p.MemEff > 1 || p.GemmEffSmall <= 0 || p.GemmEffSmall > 1 {
		return fmt.Errorf("profile %q: efficiencies %.3g and %.3g must lie in (0, 1]", p.Name, p.GemmEff, p.MemEff)
	}
	return nil
}

// Save writes the profile as a calibration file.
func (p Profile) Save(path string) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
