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

// tcWgmma runs the K loop of the wgmma core over a ring of S stages,
// one slice's wgmma in flight while the next slice's are issued:
//
//	issue slices 0 .. S-3
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
// With bars (the copy engine stages both operands, see tma.go), thread 0
// asks for a slice's two boxes instead of every thread copying its
// pieces, and the threads wait on the stage's mbarrier (its phase
// parity flips each time the ring wraps) instead of for their own copies.
func tcWgmma(k *kernel, blk *gemmBlock, ops [2]operand, stages, aStage, bStage int, ab *llir.Global, bars *mbarriers, acc []value.Value) []value.Value {
	t := blk.t
	bOff := stages * aStage
	wg := k.div(k.tid(), 128)
	if bars != nil {
		bars.init(k, stages)
	}
	copies := func(k0, stage value.Value) {
		if bars != nil {
			p := blk.p
			k.ifThen(k.and(k.icmp(enum.IPredEQ, k.tid(), ci(0)), k.lt(k0, blk.kEnd)), func() {
				bar := bars.addr(k, stage)
				bars.expect(k, stage, (t.BM+t.BN)*tmaRowBytes)
				p.tmaA(k, t.BM, blk.m0, k0, k.sharedAddr(ab, k.mul(stage, ci(aStage))), bar)
				p.tmaB(k, t.BN, blk.n0, k0, k.sharedAddr(ab, k.add(ci(bOff), k.mul(stage, ci(bStage)))), bar)
			})
			return
		}
		if !blk.wholeSlices() {
			k.issueCopies(blk.sliceCopies(k, ops, k0, stage, aStage, bStage))
			return
		}
		// Whole slices: a slice past K (the last S-2 fills, never
		// multiplied) is not staged at all, one branch for the block
		// rather than a check in every piece, and its group is empty.
		k.ifThen(k.lt(k0, blk.kEnd), func() {
			for _, c := range blk.sliceCopiesOf(k, ops, slice{k0: k0, guarded: true}, stage, aStage, bStage) {
				c()
			}
		})
		k.cpAsyncCommit()
	}
	for s := 0; s < stages-2; s++ {
		copies(k.add(blk.kStart, ci(s*t.BK)), ci(s))
	}
	if bars != nil {
		// Thread 0 initialized the mbarriers and asked for the first
		// slices; the others wait on them after this.
		k.barrier()
	}
	next := func(s value.Value) value.Value { return nextStage(k, s, stages) }
	// This warpgroup's 64 rows of A: eight 1024-byte atoms.
	aRows := k.mul(wg, ci(64*t.BK))
	carried := append(append([]value.Value{}, acc...), ci(0), ci(stages-2), ci(0))
	carried = k.loop(blk.kStart, blk.kEnd, t.BK, carried, func(k0 value.Value, c []value.Value) []value.Value {
		read, fill, parity := c[len(acc)], c[len(acc)+1], c[len(acc)+2]
		out := c[:len(acc)]
		if bars != nil {
			bars.wait(k, read, parity)
		} else {
			k.cpAsyncWait(stages - 3)
			k.asm("fence.proxy.async.shared::cta;")
		}
		k.barrier()
		k.asm("wgmma.fence.sync.aligned;")
		aBase := k.add(k.mul(read, ci(aStage)), aRows)
		bBase := k.add(ci(bOff), k.mul(read, ci(bStage)))
		da, db := k.wgmmaDesc(ab, aBase), k.wgmmaDesc(ab, bBase)
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
		if bars != nil {
			// The ring wraps: the next round of each stage's mbarrier.
			parity = k.sel(k.icmp(enum.IPredEQ, read, ci(stages-1)), k.b.NewXor(parity, ci(1)), parity)
		}
		return append(out, next(read), next(fill), parity)
	})
	if bars == nil {
		k.cpAsyncWait(0)
	}
	return k.wgmmaWait(carried[:len(acc)], 0)
}

// constant64 is an i64 constant.
func constant64(v int64) value.Value { return constant.NewInt(types.I64, v) }
