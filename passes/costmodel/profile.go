// Package costmodel predicts the time of a kernel on a GPU from what the
// passes know of it (FLOPs, minimum bytes, grid, tile, K steps, prologue
// and epilogue work) and a device profile: compute time as the
// instructions the SMs issue (for the GEMM core: FMAs, shared loads,
// staging and stores per thread, at an issue efficiency that drops with
// few warps), memory time at DRAM bandwidth, a K-step latency floor, and
// the launch and inter-kernel gaps. Fusion and tiling decisions compare
// these predictions.
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
	FP32TFLOPS   float64 `json:"fp32_tflops"`
	FP16TCTFLOPS float64 `json:"fp16_tensor_tflops"`
	// FP16MMASyncTFLOPS is mma.sync's own peak where the card's
	// tensor-core peak is another instruction's (wgmma on Hopper, measured
	// by calibration); TensorCoreEff is a fraction of it. Zero: the same
	// as FP16TCTFLOPS.
	FP16MMASyncTFLOPS float64 `json:"fp16_mma_sync_tflops,omitempty"`
	DRAMGBs           float64 `json:"dram_gbs"`
	MaxThreadsSM      int     `json:"max_threads_per_sm"`
	MaxBlocksSM       int     `json:"max_blocks_per_sm"`
	RegistersSM       int     `json:"registers_per_sm"`
	SharedBytesSM     int     `json:"shared_bytes_per_sm"`
	// The GEMM core is modelled by the instructions its threads issue
	// (DESIGN.md, cost model): per K step a thread does BK*TM*TN FMAs,
	// BK*(TM+TN) shared-memory loads costing SharedLoadInstr FMA-slots
	// each, stages its share of the slice from global memory at
	// StageInstr per element (index math, guard, load, shared store) and
	// pays SliceInstr for the loop and barriers; each output costs
	// StoreInstr (bounds, index math, store). GemmIssueEff is the fraction
	// of the SM's FP32 issue rate that instruction stream reaches. These
	// are properties of cnnc's code generator more than of the card:
	// `cnnc bench --calibrate` measures GemmIssueEff on the card,
	// `cnnc bench --fit` refits them all to measured kernels.
	GemmIssueEff    float64 `json:"gemm_issue_efficiency"`
	SharedLoadInstr float64 `json:"shared_load_instr"`
	StageInstr      float64 `json:"stage_instr"`
	SliceInstr      float64 `json:"slice_instr"`
	StoreInstr      float64 `json:"store_instr"`
	// StridedAccessFactor is what a GEMM operand gathered, or an output
	// stored, with a stride between neighbouring threads costs over a
	// coalesced one (channels-last tensors on the convolution GEMM).
	StridedAccessFactor float64 `json:"strided_access_factor"`
	// GemmFullWarps is how many warps an SM needs for the GEMM core to
	// reach its issue efficiency; fewer issue proportionally less.
	GemmFullWarps float64 `json:"gemm_full_warps"`
	// DepthwiseTapInstr is what one tap of a direct depthwise convolution
	// costs in FMA-slots (two bounds checks, address, load, FMA).
	DepthwiseTapInstr float64 `json:"depthwise_tap_instr"`
	// MemEff is the fraction of DRAM bandwidth streaming kernels reach.
	MemEff float64 `json:"memory_efficiency"`
	// TensorCoreEff is the fraction of mma.sync's fp16 peak the
	// tensor-core core's mma instructions sustain; its staging, fragment
	// loads and stores are counted as instructions like the SIMT core's.
	TensorCoreEff float64 `json:"tensor_core_efficiency"`
	// WgmmaEff is the fraction of the fp16 tensor-core peak Hopper's
	// wgmma core sustains on its warpgroup tiles (no fragment loads: the
	// tensor cores read shared memory themselves). 0.8, the least value
	// at which the model's favourites among 918 schedules measured for
	// ResNet-50 at batch 32 on an H100 come within 1.11x of the fastest
	// (bench.TestScoreTuningResNet50; 1.15x from 0.5 to 0.7).
	WgmmaEff float64 `json:"wgmma_efficiency"`
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

	// How the kernels are compiled, set by the compiler (not a property
	// of the card, so never read from a profile file): Wgmma says the
	// target runs warpgroup tiles on wgmma and adds their split-K partial
	// sums across thread-block clusters (sm_90a), HalfStorage that
	// tensors are stored in fp16 (half the bytes of their f32 type).
	Wgmma       bool `json:"-"`
	HalfStorage bool `json:"-"`
}

// Datasheet profiles. The H200's memory efficiency is what a copy kernel
// measured on one (2740 of 4800 GB/s); the others are first guesses until
// calibrated.
var profiles = map[string]Profile{
	"a100": {Name: "A100 SXM4 80GB", SM: 80, SMs: 108, ClockMHz: 1410, FP32TFLOPS: 19.5, FP16TCTFLOPS: 312,
		DRAMGBs: 2039, MaxThreadsSM: 2048, MaxBlocksSM: 32, RegistersSM: 65536, SharedBytesSM: 164 << 10,
		TensorCoreEff: 0.3, MemEff: 0.8},
	"h100": {Name: "H100 SXM5 80GB", SM: 90, SMs: 132, ClockMHz: 1980, FP32TFLOPS: 66.9, FP16TCTFLOPS: 989,
		DRAMGBs: 3350, MaxThreadsSM: 2048, MaxBlocksSM: 32, RegistersSM: 65536, SharedBytesSM: 228 << 10,
		TensorCoreEff: 0.3, WgmmaEff: 0.8, MemEff: 0.8},
	"h200": {Name: "H200 SXM 141GB", SM: 90, SMs: 132, ClockMHz: 1980, FP32TFLOPS: 66.9, FP16TCTFLOPS: 989,
		DRAMGBs: 4800, MaxThreadsSM: 2048, MaxBlocksSM: 32, RegistersSM: 65536, SharedBytesSM: 228 << 10,
		TensorCoreEff: 0.3, WgmmaEff: 0.8, MemEff: 0.57},
}

// codegenCosts are the instruction costs of cnnc's kernels and the
// device's per-kernel latencies (StridedAccessFactor, a first guess, not
// yet measured: no channels-last kernel had run), fitted by `cnnc bench --fit` to 3083
// kernels of MobileNetV2, EfficientNet-B0 and ResNet-50 at batch 1 and 32
// (-O0 and -O2, two tilings) measured on an H200 at 1980 MHz
// (bench/RESULTS.md). Every built-in profile starts from them;
// `cnnc bench --calibrate` re-measures the peaks and the GEMM issue
// efficiency on the card at hand.
var codegenCosts = Profile{GemmIssueEff: 0.98, SharedLoadInstr: 1.65, StageInstr: 40, StoreInstr: 29, StridedAccessFactor: 3, GemmFullWarps: 18.8,
	DepthwiseTapInstr: 18.7, LaunchUs: 2.35, GapUs: 1.95, SliceLatencyUs: 0.99, DepthwiseTrips: 5.7}

func init() {
	for name, p := range profiles {
		profiles[name] = p.override(codegenCosts)
	}
}

// byTarget maps a compile target to the profile used when none is named.
var byTarget = map[string]string{"sm_80": "a100", "sm_86": "a100", "sm_89": "a100", "sm_90": "h100", "sm_90a": "h100"}

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
	// The datasheet profile of the same name, else of the same
	// architecture, supplies what the file lacks (a file written before a
	// field existed: wgmma_efficiency, say).
	base, err := Lookup(cal.Name)
	if err != nil {
		base = Profile{}
		if name, ok := byTarget[fmt.Sprintf("sm_%d", cal.SM)]; ok {
			base = profiles[name]
		}
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
	set(&p.FP16MMASyncTFLOPS, o.FP16MMASyncTFLOPS)
	set(&p.DRAMGBs, o.DRAMGBs)
	seti(&p.MaxThreadsSM, o.MaxThreadsSM)
	seti(&p.MaxBlocksSM, o.MaxBlocksSM)
	seti(&p.RegistersSM, o.RegistersSM)
	seti(&p.SharedBytesSM, o.SharedBytesSM)
	set(&p.GemmIssueEff, o.GemmIssueEff)
	set(&p.SharedLoadInstr, o.SharedLoadInstr)
	set(&p.StageInstr, o.StageInstr)
	set(&p.SliceInstr, o.SliceInstr)
	set(&p.StoreInstr, o.StoreInstr)
	set(&p.StridedAccessFactor, o.StridedAccessFactor)
	set(&p.GemmFullWarps, o.GemmFullWarps)
	set(&p.DepthwiseTapInstr, o.DepthwiseTapInstr)
	set(&p.TensorCoreEff, o.TensorCoreEff)
	set(&p.WgmmaEff, o.WgmmaEff)
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
	if p.GemmIssueEff <= 0 || p.GemmIssueEff > 1 || p.MemEff <= 0 || p.MemEff > 1 {
		return fmt.Errorf("profile %q: efficiencies %.3g (GEMM issue) and %.3g (memory) must lie in (0, 1]", p.Name, p.GemmIssueEff, p.MemEff)
	}
	if p.TensorCoreEff < 0 || p.TensorCoreEff > 1 || p.WgmmaEff < 0 || p.WgmmaEff > 1 {
		return fmt.Errorf("profile %q: tensor-core efficiencies %.3g (mma.sync) and %.3g (wgmma) must lie in [0, 1]", p.Name, p.TensorCoreEff, p.WgmmaEff)
	}
	if p.SharedLoadInstr <= 0 || p.StageInstr <= 0 || p.SliceInstr < 0 || p.StoreInstr <= 0 || p.DepthwiseTapInstr <= 0 {
		return fmt.Errorf("profile %q: instruction costs must be positive", p.Name)
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
