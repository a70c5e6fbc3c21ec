package costmodel

import (
	"fmt"
	"math"
)

// Kernel is what the cost model knows of one launch.
type Kernel struct {
	FLOPs int64 // arithmetic it executes (multiply-adds count 2), recompute and tile padding excluded
	// Bytes is the minimum DRAM traffic of tensors (each external input
	// and the output once) at their graph types' 4-byte floats; fp16
	// storage (Profile.HalfStorage) halves it. WorkspaceBytes is float
	// traffic whatever the storage: split-K partial sums.
	Bytes, WorkspaceBytes int64
	Blocks                int  // thread blocks in the grid
	Threads               int  // threads per block
	Shared                int  // shared memory bytes per block
	Regs                  int  // registers per thread (estimate)
	Gemm                  bool // runs on the GEMM core: its time is the instructions the tile issues
	TileEff               float64
	// Tile is the GEMM core's block tile.
	Tile Tile
	// ChannelsLastIn and ChannelsLastOut say a convolution on the GEMM
	// core gathers its input from, or stores its output to, a channels-
	// last tensor: its threads run along pixels, so those accesses stride
	// by the channel count (StridedAccessFactor times the cost).
	ChannelsLastIn, ChannelsLastOut bool
	// VectorStageA and VectorStageB say the tensor-core core stages that
	// operand eight halves per 128-bit access (weights with K in eights;
	// a channels-last input with channels in eights): one element's index
	// arithmetic, load and store serve eight.
	VectorStageA, VectorStageB bool
	// Pipelined says both are (VectorStageA and VectorStageB on the
	// tensor cores): the core then copies slices with cp.async, several
	// in flight (Tile.PipelineStages), while the mma work runs.
	Pipelined bool
	// Depthwise says a direct depthwise convolution: FLOPs/2 taps, each
	// costing the profile's DepthwiseTapInstr.
	Depthwise bool
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
	// PrologueTaps is the depthwise taps a GEMM's prologue computes
	// (recomputation included), each costing DepthwiseTapInstr as in a
	// depthwise kernel.
	PrologueTaps int64
	// EpilogueLoads is the elements a GEMM epilogue loads from other
	// tensors (a residual): each costs as much as a store.
	EpilogueLoads int64
	// ClusterBytes is the float partial sums a K split adds across a
	// thread-block cluster (ClusterReduce): parked and read in shared
	// memory, no DRAM traffic, but priced as ClusterByteCost bytes of it
	// each (the cluster's barriers and remote reads are not free).
	ClusterBytes int64
}

// ClusterByteCost is what one byte of partial sums added across a
// cluster costs, in DRAM bytes: chosen with bench.ScoreTuning on an H100
// tuning file of ResNet-50 at batch 32 (bench/results).
const ClusterByteCost = 1.0

// DRAMBytes is the kernel's minimum DRAM traffic with tensors stored in
// fp16 (half) or fp32.
func (k Kernel) DRAMBytes(half bool) int64 {
	b := k.Bytes
	if half {
		b /= 2
	}
	return b + k.WorkspaceBytes
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

// Slots is how many blocks of k the card runs at once: a wave.
func (p Profile) Slots(k Kernel) int {
	if p.wgmma(k) {
		k.Shared = k.Tile.WgmmaShared()
	}
	return p.SMs * p.Resident(k)
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
	if p.wgmma(k) {
		k.Shared = k.Tile.WgmmaShared()
	}
	k.Bytes = k.DRAMBytes(p.HalfStorage)
	blocks := max(k.Blocks, 1)
	resident := p.Resident(k)
	slots := p.SMs * resident
	waves := (blocks + slots - 1) / slots
	waveEff := float64(blocks) / float64(waves*slots)

	// The SM issues FP32 instructions at half the card's FLOP rate (an
	// FMA is two FLOPs) split over its SMs; work is counted in such
	// instruction slots.
	smRate := p.FP32TFLOPS * 1e12 / 2 / float64(p.SMs)
	scalar := float64(k.Extra) + 4*float64(k.Transcen)
	var blockWork float64 // instruction slots one block issues
	occupancy := 1.0
	switch {
	case k.Gemm:
		side := scalar + p.StoreInstr*float64(k.EpilogueLoads)/p.GemmIssueEff + p.DepthwiseTapInstr*float64(k.PrologueTaps)
		blockWork = p.gemmBlockInstr(k) + side/float64(blocks)
	default:
		work := float64(k.FLOPs)
		if k.Depthwise {
			work = float64(k.FLOPs) / 2 * p.DepthwiseTapInstr
		}
		blockWork = (work + scalar) / float64(blocks)
	}
	// Blocks spread evenly over the SMs; an SM's rate is shared by the
	// blocks it holds, and one with few warps hides latency worse.
	loadPerSM := (blocks + p.SMs - 1) / p.SMs
	active := min(resident, loadPerSM)
	if k.Gemm {
		// Fewer warps than GemmFullWarps on an SM leave the FMA pipes
		// waiting on shared loads.
		occupancy = math.Min(1, float64(active*max(k.Threads, 1)/32)/math.Max(p.GemmFullWarps, 1))
	} else {
		occupancy = math.Min(1, 0.5+0.5*float64(active*max(k.Threads, 1))/1024)
	}
	computeNs := float64(loadPerSM) * blockWork / (smRate * occupancy) * 1e9
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
	memoryNs := (float64(k.Bytes) + ClusterByteCost*float64(k.ClusterBytes)) / (bw * memShare) * 1e9
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

// gemmBlockInstr is the FP32 instruction slots one block of the SIMT
// GEMM core issues: every thread's K steps (FMAs, shared loads, its share
// of staging the slice, loop and barriers) and its stores, at the core's
// issue efficiency.
func (p Profile) gemmBlockInstr(k Kernel) float64 {
	t := k.Tile
	if t.BM == 0 {
		t = DefaultTile
	}
	if t.TensorCore() {
		return p.tensorCoreBlockInstr(k, t)
	}
	threads := float64(t.Threads())
	bk := float64(t.BK)
	strided := func(on bool) float64 {
		if on && p.StridedAccessFactor > 0 {
			return p.StridedAccessFactor
		}
		return 1
	}
	step := bk*float64(t.TM*t.TN) + p.SharedLoadInstr*bk*float64(t.TM+t.TN) +
		p.StageInstr*bk*(float64(t.BM)+float64(t.BN)*strided(k.ChannelsLastIn))/threads + p.SliceInstr
	perThread := float64(max(k.KSlices, 1))*step + p.StoreInstr*strided(k.ChannelsLastOut)*float64(t.TM*t.TN)
	return threads * perThread / p.GemmIssueEff
}

// tensorCoreBlockInstr is one block of the tensor-core core: its threads
// stage the slices and load the mma fragments from shared memory as the
// SIMT core's do, and store their outputs; the mma work itself runs at
// the tensor cores' rate (TensorCoreEff of the fp16 peak), counted in FP32
// slots and added where the core stages through registers (no overlap with
// the mma), the larger of the two where it pipelines cp.async copies.
func (p Profile) tensorCoreBlockInstr(k Kernel, t Tile) float64 {
	threads := float64(t.Threads())
	bk := float64(t.BK)
	mTiles, nTiles := t.TM/16, t.TN/8 // a warp's m16n8 tiles
	// Fragment loads, counted as the 32-bit shared loads that move the
	// same bytes: codegen's ldmatrix.x4 issues once for four of them but
	// occupies the shared-memory pipe as long.
	frags := float64((mTiles*4 + nTiles*2) * t.BK / 16)
	stage := func(vector bool) float64 {
		if vector {
			return p.StageInstr / 8
		}
		return p.StageInstr
	}
	// mma.sync at TensorCoreEff of its own peak; wgmma, which reads its
	// operands from shared memory itself (no fragment loads), at
	// WgmmaEff of the card's (TensorCoreEff where a profile has none).
	peak, eff := p.FP16TCTFLOPS, p.TensorCoreEff
	if p.FP16MMASyncTFLOPS > 0 {
		peak = p.FP16MMASyncTFLOPS
	}
	if p.wgmma(k) {
		frags, peak = 0, p.FP16TCTFLOPS
		if p.WgmmaEff > 0 {
			eff = p.WgmmaEff
		}
	}
	step := (stage(k.VectorStageA)*float64(t.BM)+stage(k.VectorStageB)*float64(t.BN))*bk/threads + p.SharedLoadInstr*frags + p.SliceInstr
	ks := float64(max(k.KSlices, 1))
	instr := threads * (ks*step + p.StoreInstr*float64(t.BM*t.BN)/threads) / p.GemmIssueEff
	mmaFLOPs := 2 * float64(t.BM*t.BN) * bk * ks
	mma := mmaFLOPs * p.FP32TFLOPS / (peak * eff) / 2
	if k.Pipelined {
		// The copies are asynchronous: issue and the mma pipe overlap.
		return max(instr, mma)
	}
	return instr + mma
}

// wgmma says k runs on the wgmma core: a pipelined tensor-core kernel on
// a warpgroup tile, compiled for a target that has it.
func (p Profile) wgmma(k Kernel) bool {
	return p.Wgmma && k.Gemm && k.TensorCore && k.Pipelined && k.Tile.WarpgroupTile()
}

// GemmEfficiency is the fraction of the FP32 peak the GEMM core reaches
// with tile t on a problem of kSlices K steps that fills the card.
func (p Profile) GemmEfficiency(t Tile, kSlices int) float64 {
	k := Kernel{Gemm: true, Tile: t, KSlices: kSlices}
	fmas := float64(t.Threads()*t.TM*t.TN) * float64(kSlices*t.BK)
	return fmas / p.gemmBlockInstr(k)
}

// Utilization is model FLOPs over time at the FP32 peak.
func (p Profile) Utilization(modelFLOPs int64, ns float64) float64 {
	if ns <= 0 {
		return 0
	}
	return float64(modelFLOPs) / (ns * 1e-9) / (p.FP32TFLOPS * 1e12)
}

// PersistBlocks is the grid of a persistent wgmma GEMM (codegen's
// persistent core: each block runs every blocks-th tile in turn, staging
// the next tile's first K slices while it writes the last one's output)
// as the model guesses it, its slots on the card, or 0 where k stays one
// tile a block: the core is not wgmma, K is split, the GEMM is batched,
// it has no more tiles than the card SMs, or the parked output tile
// (halves) would not fit the two stages the next tile's first slices
// leave free (BM above 2 BK) or N is not in whole 64-column groups (the
// parking's swizzle). The runtime has the last word: it counts the
// blocks an SM holds, and runs the one-tile kernel codegen writes beside
// the persistent one where that holds more (the persistent kernel keeps
// more registers alive) or fits every tile in one wave.
func (p Profile) PersistBlocks(k Kernel, n, batch, split int) int {
	t := k.Tile
	if !p.wgmma(k) || split > 1 || batch != 1 || t.BM > 2*t.BK || t.BN%64 != 0 || n%8 != 0 || k.Blocks <= p.SMs {
		return 0
	}
	return min(k.Blocks, p.Slots(k))
}
