package costmodel

import (
	"cnnc/ir"
)

// Tile is a block tile of the GEMM core: a BM x BN output tile per block,
// stepping through K in slices of BK staged in shared memory. On the SIMT
// core (TM < 16) the block has (BM/TM) x (BN/TN) threads, each holding a
// TM x TN register tile. On the fp16 tensor cores (TM a multiple of 16, TN
// of 8) TM x TN is a warp's tile of m16n8k16 mma tiles and the block has
// (BM/TM) x (BN/TN) warps; K steps by BK (a multiple of 16).
type Tile struct{ BM, BN, BK, TM, TN int }

// TensorCore reports a tensor-core tile (a warp tile: TM at least 16).
func (t Tile) TensorCore() bool { return t.TM >= 16 && t.TM%16 == 0 && t.TN%8 == 0 }

// Warps is a tensor-core tile's warp grid: rows along M, columns along N.
func (t Tile) Warps() (rows, cols int) { return t.BM / t.TM, t.BN / t.TN }

// Threads per block.
func (t Tile) Threads() int {
	if t.TensorCore() {
		r, c := t.Warps()
		return 32 * r * c
	}
	return (t.BM / t.TM) * (t.BN / t.TN)
}

// Shared is the shared memory a block of the tile uses: float A (padded
// by one column) and B; on the tensor cores one stage of half A and B rows
// padded by eight, or the float output rows of one row of warps (padded
// by eight) that the epilogue parks there after the K loop, whichever is
// larger.
func (t Tile) Shared() int {
	if t.TensorCore() {
		return max(t.StageBytes(), t.EpilogueBytes())
	}
	return 4 * t.BK * (t.BM + 1 + t.BN)
}

// StageBytes is one K slice of a tensor-core tile in shared memory.
func (t Tile) StageBytes() int { return 2 * (t.BM + t.BN) * (t.BK + 8) }

// EpilogueBytes is the float output rows of one row of a tensor-core
// tile's warps, parked in shared memory by the epilogue.
func (t Tile) EpilogueBytes() int { return 4 * t.TM * (t.BN + 8) }

// PipelinedShared is the shared memory of the tensor-core core's cp.async
// pipeline: PipelineStages slices, or the epilogue's rows.
func (t Tile) PipelinedShared() int {
	return max(t.PipelineStages()*t.StageBytes(), t.EpilogueBytes())
}

// MaxPipelineShared is the most shared memory the mma.sync core's
// cp.async pipeline takes for its stages: above 48 KiB the kernel takes
// it as dynamic shared memory (the runtime opts the kernel in), and two
// blocks still fit an SM of 228 KiB. (The wgmma core's 128x256 tile
// takes four stages of 48 KiB: see WgmmaStages.)
const MaxPipelineShared = 96 << 10

// WarpgroupTile says the tile's warp grid is one warpgroup (four warps)
// per 64 rows, each spanning all BN columns, on K slices of 64 halves:
// the shape of Hopper's wgmma (m64nBNk16) reading rows of 128 bytes in
// the 128-byte swizzle, which codegen uses for it on sm_90a.
func (t Tile) WarpgroupTile() bool {
	return t.TM == 64 && 4*t.TN == t.BN && t.BN%16 == 0 && t.BN <= 256 && t.BK == 64
}

// WgmmaStageBytes is one K slice of a warpgroup tile in shared memory:
// unpadded rows (the swizzle keeps them free of bank conflicts).
func (t Tile) WgmmaStageBytes() int { return 2 * (t.BM + t.BN) * t.BK }

// WgmmaStages is how many K slices the wgmma core keeps in shared
// memory: three where two blocks then fit an SM, else four. The core
// keeps one slice's wgmma in flight while the next is issued, so a stage
// is free again two slices later, and S stages leave S-2 slices of
// copies in flight.
func (t Tile) WgmmaStages() int {
	if 3*t.WgmmaStageBytes() <= MaxPipelineShared+16<<10 {
		return 3
	}
	return 4
}

// WgmmaShared is the shared memory of the wgmma core: its stages, or
// the epilogue's rows.
func (t Tile) WgmmaShared() int {
	return max(t.WgmmaStages()*t.WgmmaStageBytes(), t.EpilogueBytes())
}

// PipelineStages is how many K slices the tensor-core core keeps in
// flight when it stages both operands with cp.async (128-bit pieces):
// as many as fit MaxPipelineShared, two to four.
func (t Tile) PipelineStages() int {
	return min(4, max(2, MaxPipelineShared/t.StageBytes()))
}

// Regs estimates registers per thread: accumulators, operands, indices.
func (t Tile) Regs() int {
	if t.TensorCore() {
		// A warp's float accumulators over its 32 lanes, one k16 step's
		// A and B fragments, addresses.
		return t.TM*t.TN/32 + t.TM/4 + t.TN/4 + 48
	}
	return t.TM*t.TN + t.TM + t.TN + 40
}

// FMAsPerLoad is the register tile's arithmetic per shared-memory load:
// a thread does TM*TN FMAs per TM+TN loads.
func (t Tile) FMAsPerLoad() float64 { return float64(t.TM*t.TN) / float64(t.TM+t.TN) }

// Ints is the tile as a schedule's Tile field.
func (t Tile) Ints() []int { return []int{t.BM, t.BN, t.BK, t.TM, t.TN} }

// TileFromInts reads a schedule's Tile field; empty means DefaultTile.
func TileFromInts(v []int) Tile {
	if len(v) != 5 {
		return DefaultTile
	}
	return Tile{v[0], v[1], v[2], v[3], v[4]}
}

// DefaultTile is the -O0 tile.
var DefaultTile = Tile{64, 64, 8, 4, 4}

// TileCandidates are the tiles the tile pass chooses from (256 threads
// each, so the loaders' strides divide evenly).
var TileCandidates = []Tile{
	{128, 128, 8, 8, 8},
	{128, 64, 8, 8, 4},
	{64, 128, 8, 4, 8},
	{64, 64, 8, 4, 4},
	{64, 32, 8, 4, 2},
	{32, 64, 8, 2, 4},
	{32, 32, 8, 2, 2},
	// Deep K slices: fewer steps, more independent loads per step, for
	// kernels whose operand loads are slow (a depthwise prologue).
	{64, 32, 32, 4, 2},
	{32, 64, 32, 2, 4},
	{32, 32, 32, 2, 2},
}

// TensorCoreTiles are the tiles of the fp16 tensor-core core.
// Large tiles take 64 x 64 warp tiles: per k16 step a warp loads four A
// and eight B fragments (32 shared-memory wavefronts) for 32 mma, where a
// 64 x 32 warp tile loads 24 for 16 and leaves the tensor cores waiting
// on shared memory. Slices of 64 halve the barriers per k16 step of the
// mma.sync core (whose fragment loads run a step ahead of the mma, across
// slices too). Warpgroup tiles (TM 64, TN BN/4, BK 64: 128x128/64x32,
// 128x256/64x64, 128x64/64x16 for 64 output channels, 64x128/64x32 for
// small grids) run on wgmma on sm_90a.
var TensorCoreTiles = []Tile{
	{256, 128, 32, 64, 64},
	{128, 256, 32, 64, 64},
	{128, 128, 32, 64, 64},
	{128, 128, 32, 64, 32},
	{128, 64, 32, 64, 32},
	{64, 128, 32, 32, 64},
	{64, 64, 32, 32, 32},
	{64, 64, 32, 32, 16},
	{32, 32, 32, 16, 8},
	{128, 128, 64, 64, 64},
	{128, 64, 64, 64, 32},
	{64, 128, 64, 32, 64},
	{64, 64, 64, 32, 32},
	// Warpgroup tiles (wgmma on sm_90a, mma.sync elsewhere).
	{128, 128, 64, 64, 32},
	{128, 256, 64, 64, 64},
	{128, 64, 64, 64, 16},
	{64, 128, 64, 64, 32},
	// Four warpgroups, B (the weights) read once per 256 rows: tuning
	// only (TuningOnly).
	{256, 64, 64, 64, 16},
	{256, 128, 64, 64, 32},
}

// TuningOnly says the tile pass takes t only where tuning measured it
// (a forced tile or a tuning file), never on the cost model's word: the
// four-warpgroup tiles, one 512-thread block an SM. Chosen by the model,
// they made untuned plans slower on an H100 (ResNet-18 b1 0.149 -> 0.168
// ms, MobileNetV2 b1 0.174 -> 0.187, ResNet-50 b1 0.337 -> 0.350), though
// ResNet-50 b32 went 1.380 -> 1.340 ms: the model does not see what a
// block of 16 warps alone on an SM loses.
func (t Tile) TuningOnly() bool { return t.WarpgroupTile() && t.BM > 128 }

// SplitKCandidates are the K splits the tile pass tries.
var SplitKCandidates = []int{1, 2, 4, 8, 16}

// GemmShape is a GEMM-core node's problem: C[batch][M][N] += A[M][K] B[K][N].
// Convolutions map output channels (per group) to M, output pixels of the
// whole batch to N and the filter window to K, one GEMM per group; a
// dense convolution with a channels-last output the other way round.
func GemmShape(n *ir.Node) (m, nn, k, batch int) {
	switch n.Op {
	case ir.OpConv2D:
		w, y := n.Inputs[1].Type.Shape, n.Out.Type.Shape
		g := n.Int("group")
		if g == 1 && ir.LayoutOf(n.Out) == ir.LayoutNHWC {
			// Channels-last output: pixels are M, output channels N.
			return y[0] * y[2] * y[3], y[1], w[1] * w[2] * w[3], 1
		}
		return y[1] / g, y[0] * y[2] * y[3], w[1] * w[2] * w[3], g
	case ir.OpGemm:
		a := n.Inputs[0].Type.Shape
		k = a[1]
		if n.Int("trans_a") != 0 {
			k = a[0]
		}
		return n.Out.Type.Shape[0], n.Out.Type.Shape[1], k, 1
	case ir.OpMatMul:
		b, m, k, nn, _ := ir.MatMulDims(n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape)
		return m, nn, k, int(ir.ShapeElems(b))
	}
	return 0, 0, 0, 0
}

// IsDepthwise reports whether a conv2d has one input channel per group:
// it runs as a direct kernel, not on the GEMM core.
func IsDepthwise(n *ir.Node) bool {
	return n.Op == ir.OpConv2D && n.Int("group") > 1 && n.Inputs[1].Type.Shape[1] == 1
}

// IsGemmAnchor reports whether a node runs on the GEMM core.
func IsGemmAnchor(n *ir.Node) bool {
	return (n.Op == ir.OpConv2D && !IsDepthwise(n)) || n.Op == ir.OpGemm || n.Op == ir.OpMatMul
}

// MaxClusterBlocks is the largest thread-block cluster a K split may
// form (the portable cluster size).
const MaxClusterBlocks = 8

// MaxClusterSplit is the largest K split the tile pass adds across a
// cluster (ReduceOf). Clusters of up to MaxClusterBlocks work (the tests
// run 3), but on an H100 only pairs beat the workspace: ResNet-50's
// layer3 3x3 on 128x256 split 2 took 25.2 us against 21.3 + 6.9 us,
// while its layer4 3x3 split 4 took 28.4 us against 21.1 + 5.5 us, and
// ResNet-18's layer3 3x3 on 128x64 split 4 46-48 us against 39 us, and
// tuned, ResNet-50's layer4 3x3 on 128x256 split 4 27.6 us against
// 20.6 + 5.2 us (bench/RESULTS.md, seventh session).
const MaxClusterSplit = 2

// ClusterReduce says a K split of tile t can add its partial sums
// across a thread-block cluster of its splits, each block reading the
// others' parked accumulators through distributed shared memory, instead
// of in a float workspace that a second kernel adds up: on Hopper
// (clusters are sm_90's), for the tensor-core tiles of one warpgroup per
// 64 rows, 2 to MaxClusterBlocks splits.
func ClusterReduce(t Tile, split int, hopper bool) bool {
	return hopper && t.WarpgroupTile() && split > 1 && split <= MaxClusterBlocks
}

// ReduceOf is the Schedule.Reduce a tuning candidate gives tile t split
// split ways: a cluster up to MaxClusterSplit. The cost model does not
// tell when a cluster pays (ResNet-18, MobileNetV2 and EfficientNet-B0
// ran 6-21% slower on an H100 with it choosing them, ResNet-50 at batch
// 1 10%), so the tile pass takes clusters only from tuning files, where
// they were measured faster (ResNet-50 b32 tuned: 1.229 ms against 1.267
// ms without).
func ReduceOf(t Tile, split int, hopper bool) string {
	if ClusterReduce(t, split, hopper) && split <= MaxClusterSplit {
		return ir.ReduceCluster
	}
	return ""
}

// KSlice is the K range each split of a split-K GEMM covers, a multiple
// of the tile's BK.
func KSlice(k, splitK, bk int) int {
	per := (k + splitK - 1) / splitK
	return (per + bk - 1) / bk * bk
}

// GemmBlocks is the grid size of a GEMM with tile t split splitK ways.
func GemmBlocks(m, n, batch int, t Tile, splitK int) int {
	return ceilDiv(m, t.BM) * ceilDiv(n, t.BN) * batch * max(splitK, 1)
}

// GemmTileEff is the useful fraction of the padded tiles.
func GemmTileEff(m, n int, t Tile) float64 {
	return float64(m*n) / float64(ceilDiv(m, t.BM)*t.BM*ceilDiv(n, t.BN)*t.BN)
}

// MapThreads is the block size of one-thread-per-element kernels.
const MapThreads = 256

// RowsPerBlock is how many rows a warp-per-row reduction block handles.
const RowsPerBlock = MapThreads / 32

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// MapBlocks is the grid of a one-thread-per-element kernel over n elements.
func MapBlocks(n int64) int { return max(1, int((n+MapThreads-1)/MapThreads)) }

// GlobalPool is how a channels-last global pool divides its work
// (codegen's emitGlobalPoolNHWC): a block of MapThreads per image and
// run of Chunk channels. Groups threads of Vec consecutive channels each
// (Vec 8 reads 128 bits: half channels in eights) span the run, one
// 32-byte sector of a pixel at most, so that many blocks share the
// image; Lanes of such spans stride through the pixels.
type GlobalPool struct {
	Vec, Groups, Lanes, Chunk, Blocks int
}

// GlobalPoolOf is the division for n images of c channels of esize
// bytes, vec channels a load (1 or 8). Groups is a power of two, so
// that a warp's lanes of one group meet by shuffles.
func GlobalPoolOf(n, c, vec, esize int) GlobalPool {
	g := 1
	for 2*g <= min(ceilDiv(c, vec), max(1, 32/(vec*esize))) {
		g *= 2
	}
	chunk := g * vec
	return GlobalPool{Vec: vec, Groups: g, Lanes: MapThreads / g, Chunk: chunk, Blocks: n * ceilDiv(c, chunk)}
}

// DepthwiseRun is how many consecutive outputs of a row one thread of an
// NCHW depthwise convolution computes (codegen's emitDepthwiseRows): up
// to eight, the whole row where it is that short, so that the window's
// input columns are loaded once for all of them.
func DepthwiseRun(wo int) int { return min(wo, 8) }
