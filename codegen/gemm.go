package codegen

import (
	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/value"

	"cnnc/passes/costmodel"
)

// gemmProblem describes C[z][m][n] = sum_k A[z][m][k] * B[z][k][n] through
// functions that emit element accesses, so one core serves implicit-GEMM
// convolution, Gemm and batched MatMul.
type gemmProblem struct {
	M, N, K, Batch int
	// loadA returns A[z][m][k] (zero where ok is false).
	loadA func(k *kernel, z, m, kk, ok value.Value) value.Value
	// loadB returns B[z][k][n] (zero where ok is false).
	loadB func(k *kernel, z, kk, n, ok value.Value) value.Value
	// store writes the accumulated C[z][m][n] through the epilogue; m < M
	// and n < N hold.
	store func(k *kernel, z, m, n, acc value.Value)
	// store8, when set, writes C[z][m][n .. n+7] the same way for n a
	// multiple of 8 (N is one), the output and its same-shape epilogue
	// operands read and written eight halves at a time. pre holds
	// prefetch8's tensors already loaded there (four i32 words each).
	store8 func(k *kernel, z, m, n value.Value, acc []value.Value, pre map[value.Value]value.Value)
	// prefetch8 are half tensors store8's epilogue reads at C's own
	// offset m*N + n (a residual; Batch 1): a core may load them before
	// its K loop, so that their reads overlap the loop instead of
	// following it, and hand them to store8.
	prefetch8 []value.Value
	// col8 are half vectors store8's epilogue reads at n alone (a bias):
	// a core whose threads keep their n through the epilogue loads them
	// once, before its K loop, and hands them to store8 in pre too.
	col8 []value.Value
	// AMContig says A is contiguous along m (stored K-major), BKContig
	// that B is contiguous along k: the loaders then give consecutive
	// threads consecutive m or k, so global loads coalesce.
	AMContig, BKContig bool
	// srcA8, when set, says where A[z][m][k .. k+7] lies as eight
	// consecutive halves (16-byte aligned) for k a multiple of 8: the
	// tensor-core core stages A 128 bits at a time with it (A is
	// k-contiguous, K a multiple of 8).
	srcA8 func(k *kernel, z, m value.Value, kk kIndex, ok value.Value) half8Src
	// srcB8 is the same for B[z][k .. k+7][n] (B k-contiguous).
	srcB8 func(k *kernel, z value.Value, kk kIndex, n, ok value.Value) half8Src
	// tmaA and tmaB, when both are set, stage A's rows (m) and B's
	// columns (n) with the bulk tensor copy engine on Hopper (Batch 1, K
	// a multiple of 64; see tma.go).
	tmaA, tmaB tmaSource
}

// kIndex is a k the core stages: the K slice's first k (a multiple of the
// tile's BK, the same for every thread) plus the thread's offset in the
// slice (below BK, the same in every slice), so that a loader can work
// out what depends on the slice once per slice and what depends on the
// thread once per kernel.
type kIndex struct {
	slice, off value.Value
}

// abs is the k itself.
func (i kIndex) abs(k *kernel) value.Value { return k.add(i.slice, i.off) }

// half8Src is where eight consecutive halves lie: base[idx .. idx+7], or
// zeros where ok is false. Unless inBounds says idx is a valid index
// even there, the read goes to index 0 where ok is false. reread says
// neighbouring rows of the tile read the same bytes (an im2col window
// wider than one pixel): the copy goes through L1 (cp.async.ca), which
// serves the rereads, rather than to L2 for each.
type half8Src struct {
	base, idx, ok value.Value
	inBounds      bool
	reread        bool
}

// index is the index a read of s goes to.
func (s half8Src) index(k *kernel) value.Value {
	if s.inBounds {
		return s.idx
	}
	return k.sel(s.ok, s.idx, ci(0))
}

// splitK is how a GEMM's K is divided: Ways slices of Slice each, the
// partial sums going to Workspace[s][z][m][n] for a second kernel to add.
type splitK struct {
	Ways, Slice int
	Workspace   value.Value
	// Cluster says the Ways blocks of a split form a thread-block cluster
	// and add their partial sums in distributed shared memory (no
	// workspace, no second kernel).
	Cluster bool
}

// gemmBlock is what every GEMM core knows of its block: tile origin,
// batch index and K range (a slice of K under split-K).
type gemmBlock struct {
	p            gemmProblem
	t            costmodel.Tile
	sk           splitK
	ways         int
	m0, n0, z    value.Value
	kStart, kEnd value.Value
	halfShared   bool // the slices are staged as half (the tensor-core core)
}

func newGemmBlock(k *kernel, p gemmProblem, t costmodel.Tile, sk splitK) *gemmBlock {
	b := &gemmBlock{p: p, t: t, sk: sk, ways: max(sk.Ways, 1)}
	b.n0 = k.mul(k.ctaid('x'), ci(t.BN))
	b.m0 = k.mul(k.ctaid('y'), ci(t.BM))
	b.z = k.div(k.ctaid('z'), b.ways)
	if p.Batch == 1 {
		b.z = ci(0)
	}
	b.kStart, b.kEnd = ci(0), ci(p.K)
	if b.ways > 1 {
		b.kStart = k.mul(k.rem(k.ctaid('z'), b.ways), ci(sk.Slice))
		b.kEnd = k.min(k.add(b.kStart, ci(sk.Slice)), ci(p.K))
	}
	return b
}

// staged is one element of a K slice on its way to shared memory.
type staged struct {
	v   value.Value
	buf *llir.Global
	at  value.Value
	vec bool // eight halves (a half8Src) rather than one float
	// guard, when not nil, says whether this thread has the element at
	// all (a tile with fewer 128-bit pieces than threads).
	guard value.Value
}

// operand is one GEMM operand as the staging code sees it: the tile's
// rows from origin (below limit), its scalar loader and, where the core
// stages half, its 128-bit source.
type operand struct {
	rows    int
	origin  value.Value
	limit   int
	kContig bool
	load    func(row, kg, ok value.Value) value.Value
	src8    func(row value.Value, kg kIndex, ok value.Value) half8Src
	buf     *llir.Global
	at      func(row, kk value.Value) value.Value
}

// operands are A and B of the block's problem, staged into as and bs at
// aAt(mm, kk) and bAt(nn, kk).
func (b *gemmBlock) operands(k *kernel, as, bs *llir.Global, aAt, bAt func(x, kk value.Value) value.Value) [2]operand {
	p := b.p
	a := operand{rows: b.t.BM, origin: b.m0, limit: p.M, kContig: !p.AMContig, buf: as, at: aAt,
		load: func(m, kg, ok value.Value) value.Value { return p.loadA(k, b.z, m, kg, ok) }}
	bo := operand{rows: b.t.BN, origin: b.n0, limit: p.N, kContig: p.BKContig, buf: bs, at: bAt,
		load: func(n, kg, ok value.Value) value.Value { return p.loadB(k, b.z, kg, n, ok) }}
	if p.srcA8 != nil {
		a.src8 = func(m value.Value, kg kIndex, ok value.Value) half8Src { return p.srcA8(k, b.z, m, kg, ok) }
	}
	if p.srcB8 != nil {
		bo.src8 = func(n value.Value, kg kIndex, ok value.Value) half8Src { return p.srcB8(k, b.z, kg, n, ok) }
	}
	return [2]operand{a, bo}
}

// vectorized says the core stages o 128 bits at a time: eight
// consecutive k per thread.
func (b *gemmBlock) vectorized(o operand) bool {
	return b.halfShared && o.src8 != nil && o.kContig && b.t.BK%8 == 0
}

// forVectors calls f for each 128-bit piece this thread stages of o's
// slice at k0: its shared slot, its source, and a guard (nil when every
// thread has a piece this round; otherwise only where it holds is there
// one, and src.ok is false elsewhere).
func (b *gemmBlock) forVectors(k *kernel, o operand, k0 value.Value, f func(at value.Value, src half8Src, guard value.Value)) {
	sl := b.sliceAt(k, k0)
	for e := 0; e < b.vectors(o); e += b.t.Threads() {
		f(b.vector(k, o, sl, e))
	}
}

// wholeSlices says K is a multiple of BK: a slice lies inside K (so does
// every split's range) or past it, and a piece needs no check of its own
// k.
func (b *gemmBlock) wholeSlices() bool { return b.p.K%b.t.BK == 0 }

// slice is a K slice as the staging sees it: where its pieces are read
// from, and (with whole slices) whether it lies inside K at all.
type slice struct {
	k0, live value.Value
	// guarded says the caller stages the slice only where it lies inside
	// K (a branch of the whole block, whole slices): its pieces check
	// nothing of k.
	guarded bool
}

// sliceAt is the slice at k0. The pipelines stage slices ahead of the K
// loop, up to past its end, and never multiply those: with whole slices
// such a slice is staged as zeros, its pieces' reads off (live, once per
// slice for every thread) and their addresses those of the last slice, in
// bounds.
func (b *gemmBlock) sliceAt(k *kernel, k0 value.Value) slice {
	if !b.wholeSlices() {
		return slice{k0: k0}
	}
	return slice{k0: k.min(k0, k.sub(b.kEnd, ci(b.t.BK))), live: k.lt(k0, b.kEnd)}
}

// pieceAt is the row and k offset of 128-bit piece lin of a slice, row
// after row: the BK/8 pieces of a row go to consecutive threads, so a
// warp reads whole rows of its operand in global memory. In the wgmma
// core's swizzled rows every eight consecutive pieces land in distinct
// banks; in the mma.sync core's rows of BK+8 halves, BK 32 tiles' stores
// collide 2-way, which measured faster than eight rows of one k piece at
// a time (bench/RESULTS.md, sixth session).
func (b *gemmBlock) pieceAt(k *kernel, lin value.Value) (row, kk value.Value) {
	per := b.t.BK / 8
	return k.div(lin, per), k.mul(k.rem(lin, per), ci(8))
}

// vectors is how many 128-bit pieces o's slice has.
func (b *gemmBlock) vectors(o operand) int { return o.rows * b.t.BK / 8 }

// vector is forVectors' round e (a multiple of the block's threads).
func (b *gemmBlock) vector(k *kernel, o operand, sl slice, e int) (value.Value, half8Src, value.Value) {
	t := b.t
	lin := k.add(k.tid(), ci(e))
	var guard value.Value
	if e+t.Threads() > b.vectors(o) {
		guard = k.lt(lin, ci(b.vectors(o)))
	}
	row, kk := b.pieceAt(k, lin)
	r, kg := k.add(o.origin, row), kIndex{sl.k0, kk}
	ok := k.lt(r, ci(o.limit))
	if sl.live != nil {
		ok = k.and(ok, sl.live)
	} else if !sl.guarded {
		ok = k.and(ok, k.lt(kg.abs(k), b.kEnd))
	}
	if guard != nil {
		ok = k.and(ok, guard)
	}
	return o.at(row, kk), o.src8(r, kg, ok), guard
}

// loadSlice loads the A and B slice at k0 into registers (zero outside
// the problem), each element with its shared-memory slot. Consecutive
// threads take consecutive elements along the operand's contiguous
// dimension, so the loads coalesce.
func (b *gemmBlock) loadSlice(k *kernel, k0 value.Value, ops [2]operand) []staged {
	return append(b.stageOperand(k, k0, ops[0]), b.stageOperand(k, k0, ops[1])...)
}

// stageOperand loads one operand's slice at k0: rows of the tile by BK
// steps of k. Consecutive threads take consecutive k where the operand is
// k-contiguous, consecutive rows otherwise; a vectorized operand takes
// eight consecutive k per thread in one 128-bit load.
func (b *gemmBlock) stageOperand(k *kernel, k0 value.Value, o operand) []staged {
	t := b.t
	var out []staged
	if b.vectorized(o) {
		b.forVectors(k, o, k0, func(at value.Value, src half8Src, guard value.Value) {
			out = append(out, staged{v: k.loadHalf8(src.base, src.idx, src.ok), buf: o.buf, at: at, vec: true, guard: guard})
		})
		return out
	}
	element := func(row, kk value.Value) {
		r, kg := k.add(o.origin, row), k.add(k0, kk)
		ok := k.and(k.lt(r, ci(o.limit)), k.lt(kg, b.kEnd))
		out = append(out, staged{v: o.load(r, kg, ok), buf: o.buf, at: o.at(row, kk)})
	}
	for e := 0; e < o.rows*t.BK; e += t.Threads() {
		lin := k.add(k.tid(), ci(e))
		if o.kContig {
			kk := k.rem(lin, t.BK)
			element(k.div(lin, t.BK), kk)
		} else {
			element(k.rem(lin, o.rows), k.div(lin, o.rows))
		}
	}
	return out
}

// storeResult writes the finished C[z][m][n] where m < M and n < N:
// through the problem's store (bias, epilogue), or under split-K as a
// float partial sum in the workspace, block z' = z*ways + split.
func (b *gemmBlock) storeResult(k *kernel, m, n, v value.Value) {
	p := b.p
	k.ifThen(k.and(k.lt(m, ci(p.M)), k.lt(n, ci(p.N))), func() {
		if b.ways == 1 {
			p.store(k, b.z, m, n, v)
			return
		}
		slot := k.add(k.mul(k.ctaid('z'), ci(p.M)), m)
		k.store(v, k.at(b.sk.Workspace, k.madd(slot, p.N, n)))
	})
}

func (b *gemmBlock) launch() launchShape {
	return launchShape{grid: [3]int{ceilDiv(b.p.N, b.t.BN), ceilDiv(b.p.M, b.t.BM), b.p.Batch * b.ways}, block: b.t.Threads()}
}

// emitGemm writes the tiled GEMM kernel body and returns its launch shape.
//
//	As[BK][BM+1], Bs[BK][BN] in shared memory (A padded against bank conflicts)
//	for k0 := 0; k0 < K; k0 += BK {
//	    stage A and B slices (coalesced: consecutive threads take consecutive k of A, n of B)
//	    barrier
//	    for kk < BK: acc[i][j] += As[kk][ty+i*TY] * Bs[kk][tx+j*TX]   (unrolled)
//	    barrier
//	}
//	store acc[i][j] at m = m0+ty+i*TY, n = n0+tx+j*TX (coalesced along n)
func emitGemm(k *kernel, p gemmProblem, t costmodel.Tile, sk splitK) launchShape {
	blk := newGemmBlock(k, p, t, sk)
	tx, ty := k.rem(k.tid(), t.BN/t.TN), k.div(k.tid(), t.BN/t.TN)
	strideX, strideY := t.BN/t.TN, t.BM/t.TM
	lda := t.BM + 1
	as := k.sharedBuffer("A", t.BK*lda)
	bs := k.sharedBuffer("B", t.BK*t.BN)
	// As[kk][mm] (padded), Bs[kk][nn].
	aAt := func(mm, kk value.Value) value.Value { return k.madd(kk, lda, mm) }
	bAt := func(nn, kk value.Value) value.Value { return k.madd(kk, t.BN, nn) }
	storeSlice := func(vals []staged) {
		for _, v := range vals {
			k.store(v.v, k.sharedAt(v.buf, v.at))
		}
	}

	acc := make([]value.Value, t.TM*t.TN)
	for i := range acc {
		acc[i] = cf(0)
	}
	// The next slice's loads are issued before the current slice's math
	// and stored after it, so their latency hides behind it.
	ops := blk.operands(k, as, bs, aAt, bAt)
	storeSlice(blk.loadSlice(k, blk.kStart, ops))
	k.barrier()
	acc = k.loop(blk.kStart, blk.kEnd, t.BK, acc, func(k0 value.Value, acc []value.Value) []value.Value {
		next := blk.loadSlice(k, k.add(k0, ci(t.BK)), ops)
		out := append([]value.Value{}, acc...)
		for kk := 0; kk < t.BK; kk++ {
			a := make([]value.Value, t.TM)
			b := make([]value.Value, t.TN)
			for i := range a {
				a[i] = k.load(k.sharedAt(as, k.add(ci(kk*lda+i*strideY), ty)))
			}
			for j := range b {
				b[j] = k.load(k.sharedAt(bs, k.add(ci(kk*t.BN+j*strideX), tx)))
			}
			for i := range a {
				for j := range b {
					out[i*t.TN+j] = k.fma(a[i], b[j], out[i*t.TN+j])
				}
			}
		}
		k.barrier()
		storeSlice(next)
		k.barrier()
		return out
	})
	for i := 0; i < t.TM; i++ {
		m := k.add(blk.m0, k.add(ty, ci(i*strideY)))
		for j := 0; j < t.TN; j++ {
			n := k.add(blk.n0, k.add(tx, ci(j*strideX)))
			blk.storeResult(k, m, n, acc[i*t.TN+j])
		}
	}
	return blk.launch()
}

// emitSplitKReduce is the second kernel of a split-K GEMM: one thread per
// output element adds the partial sums and runs the store (bias,
// epilogue).
func emitSplitKReduce(k *kernel, p gemmProblem, sk splitK) launchShape {
	total := p.Batch * p.M * p.N
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	co := k.coords(i, []int{p.Batch, p.M, p.N})
	// The main kernel's block z' = z*ways + s wrote Workspace[z'][m][n].
	mn := p.M * p.N
	base := k.add(k.mul(co[0], ci(sk.Ways*mn)), k.madd(co[1], p.N, co[2]))
	var sum value.Value = cf(0)
	for s := 0; s < sk.Ways; s++ {
		sum = k.fadd(sum, k.loadAt(sk.Workspace, k.add(base, ci(s*mn))))
	}
	p.store(k, co[0], co[1], co[2], sum)
	return mapShape(total, k.threads)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
