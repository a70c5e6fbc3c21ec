package codegen

import (
	"fmt"
	"strings"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// The Hopper tensor-core core (sm_90a): each warpgroup (four warps) owns
// 64 rows of the block tile and all its BN columns, and multiplies them
// with one asynchronous wgmma.mma_async.m64nBNk16 per k16 step, reading A
// and B straight from shared memory through matrix descriptors: no
// fragment loads, so the tensor cores no longer wait on the warps'
// ldmatrix and the shared-memory pipe. A tile takes this core when its
// warp grid is one warpgroup per 64 rows (TM 64, TN = BN/4), its K
// slices are 64 halves deep, and both operands stage 128 bits at a time
// with cp.async, or whole slices with the bulk tensor copy engine
// (tma.go).
//
// Shared memory holds the operands K-major in the 128-byte swizzle: a
// row of a slice is 128 bytes (64 halves), 16-byte piece c of row r sits
// at piece c ^ (r mod 8) of it, and the 8-row groups (1024-byte atoms,
// aligned to 1024 bytes) follow one another. A descriptor's stride byte
// offset is then 1024 bytes, its leading byte offset unused, and the k16
// steps of a slice start 32 bytes apart: the hardware applies the
// swizzle to the address bits, as the copies did. The eight pieces of a
// row, which eight consecutive threads copy, land in distinct banks.
//
// The accumulators of warp w of a warpgroup are laid out as mma.sync's
// m16n8 C fragments of rows 16w .. 16w+15, n-tile after n-tile: register
// 4j+2h+e holds row 16w+8h+g, column 8j+2t+e (lane 4g+t).

// swizzledAt is the half index of element (row, kk) of one stage in the
// 128-byte swizzle (kk a multiple of 8: a 16-byte piece).
func swizzledAt(k *kernel, row, kk value.Value) value.Value {
	return k.madd(row, 64, k.mul(k.xor(k.div(kk, 8), k.rem(row, 8)), ci(8)))
}

// asm emits side-effecting inline PTX without operands.
func (k *kernel) asm(text string) {
	a := llir.NewInlineAsm(types.NewPointer(types.NewFunc(types.Void)), text, "~{memory}")
	a.SideEffect = true
	k.b.NewCall(a)
}

// sharedAddr is the shared-window address of buf[idx] (a half array) as
// an i64.
func (k *kernel) sharedAddr(buf *llir.Global, idx value.Value) value.Value {
	return k.b.NewPtrToInt(k.sharedAt(buf, idx), types.I64)
}

// wgmmaDesc is the matrix descriptor of the 8-row groups from half index
// at of buf in the 128-byte swizzle: start address and stride byte offset
// (1024) in 16-byte units, leading byte offset 1 (unused), layout 1 in
// bits 62-63.
func (k *kernel) wgmmaDesc(buf *llir.Global, at value.Value) value.Value {
	addr := k.b.NewLShr(k.sharedAddr(buf, at), constant64(4))
	d := k.b.NewAnd(addr, constant64(0x3FFF))
	return k.b.NewOr(d, constant64(1<<16|(1024>>4)<<32|1<<62))
}

// wgmma issues D += A B for one k16 step of a warpgroup's 64 x n tile;
// acc holds the thread's n/2 accumulators.
func (k *kernel) wgmma(n int, descA, descB value.Value, acc []value.Value) []value.Value {
	outs := make([]string, n/2)
	cons := make([]string, 0, n+3)
	fields := make([]types.Type, n/2)
	for i := range outs {
		outs[i] = fmt.Sprintf("$%d", i)
		cons = append(cons, "=f")
		fields[i] = f32
	}
	cons = append(cons, "l", "l")
	for i := range outs {
		cons = append(cons, fmt.Sprint(i))
	}
	text := fmt.Sprintf("wgmma.mma_async.sync.aligned.m64n%dk16.f32.f16.f16 {%s}, $%d, $%d, 1, 1, 1, 0, 0;",
		n, strings.Join(outs, ", "), n/2, n/2+1)
	ret := types.NewStruct(fields...)
	params := []types.Type{types.I64, types.I64}
	for range outs {
		params = append(params, f32)
	}
	a := llir.NewInlineAsm(types.NewPointer(types.NewFunc(ret, params...)), text, strings.Join(cons, ","))
	a.SideEffect = true
	args := append([]value.Value{descA, descB}, acc...)
	r := k.b.NewCall(a, args...)
	out := make([]value.Value, n/2)
	for i := range out {
		out[i] = k.b.NewExtractValue(r, uint64(i))
	}
	return out
}

// wgmmaWait waits until at most pending of the warpgroup's wgmma groups
// are in flight and hands the accumulators on through the wait, so that
// nothing reads them before it. With pending 0 they are final; with more,
// groups still in flight write them, and only the next wgmma (in the
// same order) or a later wait may take them.
func (k *kernel) wgmmaWait(acc []value.Value, pending int) []value.Value {
	cons := make([]string, 0, 2*len(acc))
	fields := make([]types.Type, len(acc))
	for i := range acc {
		cons = append(cons, "=f")
		fields[i] = f32
	}
	params := make([]types.Type, len(acc))
	for i := range acc {
		cons = append(cons, fmt.Sprint(i))
		params[i] = f32
	}
	a := llir.NewInlineAsm(types.NewPointer(types.NewFunc(types.NewStruct(fields...), params...)),
		fmt.Sprintf("wgmma.wait_group.sync.aligned %d;", pending), strings.Join(cons, ",")+",~{memory}")
	a.SideEffect = true
	r := k.b.NewCall(a, acc...)
	out := make([]value.Value, len(acc))
	for i := range out {
		out[i] = k.b.NewExtractValue(r, uint64(i))
	}
	return out
}

// wgmmaRing is the wgmma core's shared memory: stages K slices, A's
// aStage halves each from 0, B's bStage each after them, in ab; bars
// are the stages' mbarriers where the copy engine stages both operands
// (nil where the threads copy with cp.async).
type wgmmaRing struct {
	stages, aStage, bStage int
	ab                     *llir.Global
	bars                   *mbarriers
}

// bOff is the first half of B's stages.
func (r wgmmaRing) bOff() int { return r.stages * r.aStage }

// copier is the function that stages blk's K slice at k0 (none past the
// block's K) into stage. With bars, thread 0 asks for the slice's two
// boxes and arms the stage's mbarrier for their bytes; otherwise every
// thread copies its pieces and closes them as one cp.async group.
func (r wgmmaRing) copier(k *kernel, blk *gemmBlock, ops [2]operand) func(k0, stage value.Value) {
	t := blk.t
	return func(k0, stage value.Value) {
		if r.bars != nil {
			p := blk.p
			k.ifThen(k.and(k.icmp(enum.IPredEQ, k.tid(), ci(0)), k.lt(k0, blk.kEnd)), func() {
				bar := r.bars.addr(k, stage)
				r.bars.expect(k, stage, (t.BM+t.BN)*tmaRowBytes)
				p.tmaA(k, t.BM, blk.m0, k0, k.sharedAddr(r.ab, k.mul(stage, ci(r.aStage))), bar)
				p.tmaB(k, t.BN, blk.n0, k0, k.sharedAddr(r.ab, k.add(ci(r.bOff()), k.mul(stage, ci(r.bStage)))), bar)
			})
			return
		}
		if !blk.wholeSlices() {
			k.issueCopies(blk.sliceCopies(k, ops, k0, stage, r.aStage, r.bStage))
			return
		}
		// Whole slices: a slice past K (the last S-2 fills, never
		// multiplied) is not staged at all, one branch for the block
		// rather than a check in every piece, and its group is empty.
		k.ifThen(k.lt(k0, blk.kEnd), func() {
			for _, c := range blk.sliceCopiesOf(k, ops, slice{k0: k0, guarded: true}, stage, r.aStage, r.bStage) {
				c()
			}
		})
		k.cpAsyncCommit()
	}
}

// prologue asks for blk's first S-2 K slices, into stages 0 .. S-3.
func (r wgmmaRing) prologue(k *kernel, blk *gemmBlock, ops [2]operand) {
	copies := r.copier(k, blk, ops)
	for s := 0; s < r.stages-2; s++ {
		copies(k.add(blk.kStart, ci(s*blk.t.BK)), ci(s))
	}
}

// tcWgmma runs the K loop of the wgmma core over a ring of S stages,
// one slice's wgmma in flight while the next slice's are issued:
//
//	issue slices 0 .. S-3 (unless issued: the caller already did)
//	for each slice i:
//	    wait for slice i's copies; make them visible to the async proxy
//	    barrier: slice i is staged, and every warpgroup's wgmma of
//	             slice i-2 are done (each waited for them in step i-1)
//	    fence; wgmma per k16 step of slice i; commit
//	    issue slice i+S-2 into the stage slice i-2 used
//	    wait until slice i-1's wgmma are done
//
// so the tensor cores have slice i-1's work while the warps wait at the
// barrier and issue slice i's.
//
// With the ring's mbarriers (the copy engine stages both operands, see
// tma.go), thread 0 asks for a slice's two boxes instead of every thread
// copying its pieces, and the threads wait on the stage's mbarrier
// instead of for their own copies: phases holds, in bit s, the parity of
// stage s's next phase, and tcWgmma returns it after the loop (a
// persistent block's tiles use the stages unevenly where the slices of a
// tile are not a multiple of S). Without issued and with the mbarriers,
// tcWgmma initializes them.
func tcWgmma(k *kernel, blk *gemmBlock, ops [2]operand, r wgmmaRing, acc []value.Value, issued bool, phases value.Value) ([]value.Value, value.Value) {
	t, stages, bars := blk.t, r.stages, r.bars
	wg := k.div(k.tid(), 128)
	if !issued {
		if bars != nil {
			bars.init(k, stages)
		}
		r.prologue(k, blk, ops)
		if bars != nil {
			// Thread 0 initialized the mbarriers and asked for the first
			// slices; the others wait on them after this.
			k.barrier()
		}
	}
	copies := r.copier(k, blk, ops)
	next := func(s value.Value) value.Value { return nextStage(k, s, stages) }
	// This warpgroup's 64 rows of A: eight 1024-byte atoms.
	aRows := k.mul(wg, ci(64*t.BK))
	carried := append(append([]value.Value{}, acc...), ci(0), ci(stages-2), phases)
	carried = k.loop(blk.kStart, blk.kEnd, t.BK, carried, func(k0 value.Value, c []value.Value) []value.Value {
		read, fill, phases := c[len(acc)], c[len(acc)+1], c[len(acc)+2]
		out := c[:len(acc)]
		if bars != nil {
			bars.wait(k, read, k.b.NewAnd(k.b.NewLShr(phases, read), ci(1)))
			phases = k.b.NewXor(phases, k.b.NewShl(ci(1), read))
		} else {
			k.cpAsyncWait(stages - 3)
			k.asm("fence.proxy.async.shared::cta;")
		}
		k.barrier()
		k.asm("wgmma.fence.sync.aligned;")
		aBase := k.add(k.mul(read, ci(r.aStage)), aRows)
		bBase := k.add(ci(r.bOff()), k.mul(read, ci(r.bStage)))
		da, db := k.wgmmaDesc(r.ab, aBase), k.wgmmaDesc(r.ab, bBase)
		for ks := 0; ks < t.BK; ks += 16 {
			// k16 step ks: 32 bytes further along the rows, ks/8 in the
			// descriptors' start address (16-byte units; shared
			// addresses stay below 2^18, so the 14-bit field never
			// carries).
			step := constant64(int64(ks / 8))
			out = k.wgmma(t.BN, k.b.NewAdd(da, step), k.b.NewAdd(db, step), out)
		}
		k.asm("wgmma.commit_group.sync.aligned;")
		copies(k.add(k0, ci((stages-2)*t.BK)), fill)
		out = k.wgmmaWait(out, 1)
		return append(out, next(read), next(fill), phases)
	})
	if bars == nil {
		k.cpAsyncWait(0)
	}
	return k.wgmmaWait(carried[:len(acc)], 0), carried[len(acc)+2]
}

// emitPersistentWgmma writes the persistent wgmma core: a block per slot
// of the card (grid is the compiler's guess of their number; the runtime
// counts them), block b running tiles b, b+blocks, ... (n fastest, as the
// one-tile grid runs them). Each
// tile's epilogue first asks for the next tile's first S-2 slices, into
// stages 0 .. S-3, and only then parks this tile's output, as halves, in
// B's last two stages, which those slices leave free: the next tile's
// loads are in flight while this one's output goes out, rather than
// starting after it on a fresh block. The parked rows are unpadded, the
// 16-byte pieces of row r at piece c ^ (r mod 8), so that a quad's
// stores of eight rows and eight threads' 128-bit loads of a row both
// find distinct banks.
func emitPersistentWgmma(k *kernel, blk *gemmBlock, grid int, r wgmmaRing, at, bAt func(x, kk value.Value) value.Value) launchShape {
	t, p := blk.t, blk.p
	tilesN := ceilDiv(p.N, t.BN)
	tiles := tilesN * ceilDiv(p.M, t.BM)
	setTile := func(b *gemmBlock, tile value.Value) {
		b.m0 = k.mul(k.div(tile, tilesN), ci(t.BM))
		b.n0 = k.mul(k.rem(tile, tilesN), ci(t.BN))
	}
	first := k.ctaid('x')
	setTile(blk, first)
	if r.bars != nil {
		r.bars.init(k, r.stages)
	}
	r.prologue(k, blk, blk.operands(k, r.ab, r.ab, at, bAt))
	if r.bars != nil {
		k.barrier() // the mbarriers are initialized and armed
	}
	lane, warp := k.rem(k.tid(), 32), k.div(k.tid(), 32)
	g, tq := k.div(lane, 4), k.rem(lane, 4)
	park := r.bOff() + (r.stages-2)*r.bStage
	parked := func(row, piece value.Value) value.Value {
		return k.add(ci(park), k.madd(row, t.BN, k.mul(k.xor(piece, k.rem(row, 8)), ci(8))))
	}
	// The runtime launches as many blocks as the card holds (at most
	// tiles; grid is the compiler's guess): block b runs tiles b,
	// b+nctaid, ...
	stride := k.sreg("nctaid.x")
	count := k.b.NewUDiv(k.add(k.sub(ci(tiles), first), k.sub(stride, ci(1))), stride)
	k.loop(ci(0), count, 1, []value.Value{ci(0)}, func(i value.Value, c []value.Value) []value.Value {
		tile := k.add(first, k.mul(i, stride))
		setTile(blk, tile)
		ops := blk.operands(k, r.ab, r.ab, at, bAt)
		colOps := blk.columnOperands(k)
		acc := make([]value.Value, t.BN/2)
		for j := range acc {
			acc[j] = cf(0)
		}
		acc, phases := tcWgmma(k, blk, ops, r, acc, true, c[0])
		// Every warpgroup's wgmma are done and every thread's copies
		// landed: the stages are free.
		k.barrier()
		nb := *blk
		nextTile := k.add(tile, stride)
		setTile(&nb, nextTile)
		nb.kEnd = k.sel(k.lt(nextTile, ci(tiles)), blk.kEnd, ci(0)) // no slices past the last tile
		r.prologue(k, &nb, nb.operands(k, r.ab, r.ab, at, bAt))
		// Warp w's rows 16w .. 16w+15 (the warpgroup's 64 rows from
		// 64 (w/4)), every n-tile j: row 16w+8h+g, columns 8j+2tq+e.
		for j := 0; j < t.BN/8; j++ {
			for h := 0; h < 2; h++ {
				row := k.add(k.mul(warp, ci(16)), k.add(ci(8*h), g))
				o := 4*j + 2*h
				idx := k.add(parked(row, ci(j)), k.mul(tq, ci(2)))
				k.storeSharedWord(r.ab, idx, k.packHalves(acc[o], acc[o+1]))
			}
		}
		k.barrier()
		blk.columnFloats(k, colOps)
		for e := 0; e < t.BM*t.BN/8; e += t.Threads() {
			pc := blk.epiloguePiece(k, 0, t.BM/t.TM, e)
			k.ifThen(pc.ok, func() {
				v := k.unpack8(k.loadSharedWords(r.ab, parked(pc.row, k.div(pc.col, 8))))
				p.store8(k, blk.z, pc.m, pc.n, v, colOps)
			})
		}
		if r.bars != nil {
			// The copy engine writes B's last stages next: after these
			// generic reads.
			k.asm("fence.proxy.async.shared::cta;")
		}
		return []value.Value{phases}
	})
	return launchShape{grid: [3]int{min(grid, tiles), 1, 1}, block: t.Threads(), persistTiles: tiles}
}

// constant64 is an i64 constant.
func constant64(v int64) value.Value { return constant.NewInt(types.I64, v) }
