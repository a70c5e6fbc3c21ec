package costmodel

import (
	"fmt"
	"math"
)

// Kernel is what the cost model knows of one launch.
type Kernel struct {
	FLOPs   int64 // arithmetic it executes (multiply-adds count 2), recompute and tile padding excluded
	Bytes   int64 // minimum DRAM traffic: each external input and the output once
	Blocks  int   // thread blocks in the grid
	Threads int   // threads per block
	Shared  int   // shared memory bytes per block
	Regs    int   // registers per thread (estimate)
	Gemm    bool  // runs on the GEMM core: compute time counts at the GEMM rate
	TileEff float64
	// FMAsPerLoad is the register tile's FMAs per shared-memory load.
	FMAsPerLoad float64
	// TensorCore says the GEMM runs on the fp16 tensor cores.
	TensorCore bool
	// Extra is scalar work outside the GEMM core (prologues, epilogues).
	Extra int64
	// KSlices is how many K steps each GEMM block takes; SliceTrips how
	// many dependent memory round trips each step waits for (1, more when
	// a prologue computes the operand); DepthwisePrologue says a depthwise
	// convolution computes it (the profile's DepthwiseTrips then apply).
	KSlices           int
	SliceTrips        float64
	DepthwisePrologue bool
	Transcen          int64 // special-function evaluations (exp, log): 4 FLOP-slots each
}

// Prediction is a kernel's predicted time and how it was reached.
type Prediction struct {
	Ns        float64
	ComputeNs float64
	MemoryNs  float64
	LaunchNs  float64
	Waves     int
	WaveEff   float64 // useful fraction of the block slots over all waves
	Bound     string  // "compute", "memory" or "launch"
}

func (p Prediction) String() string {
	return fmt.Sprintf("%.1f us (%s-bound; compute %.1f, memory %.1f, %d waves at %.0f%%)",
		p.Ns/1e3, p.Bound, p.ComputeNs/1e3, p.MemoryNs/1e3, p.Waves, 100*p.WaveEff)
}

// Resident is how many blocks of k fit on one SM at once.
func (p Profile) Resident(k Kernel) int {
	threads := max(k.Threads, 1)
	n := min(p.MaxBlocksSM, p.MaxThreadsSM/threads)
	if k.Regs > 0 && p.RegistersSM > 0 {
		n = min(n, p.RegistersSM/(k.Regs*threads))
	}
	if k.Shared > 0 && p.SharedBytesSM > 0 {
		n = min(n, p.SharedBytesSM/k.Shared)
	}
	return max(n, 1)
}

// Predict estimates a kernel's time. Compute runs at the sustained rate
// (GEMM core or plain FP32), split evenly over the block slots of each
// wave; a partial wave leaves slots idle (wave quantization) and padded
// tiles waste work (tile quantization, TileEff). Memory streams the
// minimum bytes at the sustained bandwidth. The kernel takes the larger of
// the two plus its launch.
func (p Profile) Predict(k Kernel) Prediction {
	blocks := max(k.Blocks, 1)
	resident := p.Resident(k)
	slots := p.SMs * resident
	waves := (blocks + slots - 1) / slots
	waveEff := float64(blocks) / float64(waves*slots)

	rate := p.FP32TFLOPS * 1e12 // FLOP/s of the card
	switch {
	case k.Gemm && k.TensorCore:
		rate = p.FP16TCTFLOPS * 1e12 * p.TensorCoreEff
	case k.Gemm:
		rate *= p.gemmEff(k.FMAsPerLoad)
	default:
		rate *= 0.5 // scalar FP32 outside the GEMM core
	}
	work := float64(k.FLOPs)
	if k.TileEff > 0 && k.TileEff < 1 {
		work /= k.TileEff
	}
	if k.Gemm {
		// Scalar work in a GEMM kernel runs at the plain FP32 rate.
		work += (float64(k.Extra) + 4*float64(k.Transcen)) * rate / (0.5 * p.FP32TFLOPS * 1e12)
	} else {
		work += float64(k.Extra) + 4*float64(k.Transcen)
	}
	// Blocks spread evenly over the SMs; an SM's rate is shared by the
	// blocks it holds, and one with few warps hides latency worse.
	loadPerSM := (blocks + p.SMs - 1) / p.SMs
	active := min(resident, loadPerSM)
	occupancy := 1.0 // the GEMM core's calibrated efficiency includes its occupancy
	if !k.Gemm {
		occupancy = math.Min(1, 0.5+0.5*float64(active*max(k.Threads, 1))/1024)
	}
	smRate := rate / float64(p.SMs) * occupancy
	computeNs := float64(loadPerSM) * (work / float64(blocks)) / smRate * 1e9
	if k.Gemm && k.KSlices > 0 {
		// Each K step waits at least for its loads: the blocks an SM runs
		// one after another each take KSlices such steps.
		trips := math.Max(k.SliceTrips, 1)
		if k.DepthwisePrologue && p.DepthwiseTrips > 0 {
			trips = p.DepthwiseTrips
		}
		rounds := (loadPerSM + active - 1) / active
		computeNs = math.Max(computeNs, float64(rounds*k.KSlices)*trips*p.SliceLatencyUs*1e3)
	}
	bw := p.DRAMGBs * 1e9 * p.MemEff
	// A grid on few SMs cannot keep enough loads in flight for the full
	// bandwidth; one SM can pull about 2.5 times its even share.
	memShare := math.Min(1, 2.5*float64(min(blocks, p.SMs))/float64(p.SMs))
	memoryNs := float64(k.Bytes) / (bw * memShare) * 1e9
	launchNs := p.LaunchUs * 1e3
	pr := Prediction{ComputeNs: computeNs, MemoryNs: memoryNs, LaunchNs: launchNs, Waves: waves, WaveEff: waveEff}
	body := math.Max(computeNs, memoryNs)
	// Launches are issued while earlier kernels run: a kernel costs its
	// body plus the device's gap, but never less than the issue interval.
	pr.Ns = math.Max(body+p.GapUs*1e3, launchNs)
	switch {
	case launchNs > body+p.GapUs*1e3:
		pr.Bound = "launch"
	case computeNs >= memoryNs:
		pr.Bound = "compute"
	default:
		pr.Bound = "memory"
	}
	return pr
}

// gemmEff interpolates the GEMM core's efficiency between the 4x4 tile
// (two FMAs per shared load) and the 8x8 one (four), linearly in the
// ratio, floored at a tenth.
func (p Profile) gemmEff(ratio float64) float64 {
	if ratio <= 0 {
		ratio = 2
	}
	e := p.GemmEffSmall + (p.GemmEff-p.GemmEffSmall)*(ratio-2)/2
	return math.Max(e, 0.1*p.GemmEff)
}

// Utilization is model FLOPs over time at the FP32 peak.
func (p Profile) Utilization(modelFLOPs int64, ns float64) float64 {
	if ns <= 0 {
		return 0
	}
	return float64(modelFLOPs) / (ns * 1e-9) / (p.FP32TFLOPS * 1e12)
}
