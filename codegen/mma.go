package codegen

import (
	"fmt"
	"maps"
	"strings"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"cnnc/passes/costmodel"
)

// The tensor-core GEMM core: the block's warps form a grid of
// (BM/TM) x (BN/TN), each warp owning a TM x TN piece of the block tile made
// of m16n8k16 mma tiles. A and B slices are staged in shared memory as half,
// A m-major and B n-major (k contiguous in both), and each warp reads its
// fragments with ldmatrix: one instruction per 16x16 A fragment and per
// pair of 16x8 B fragments. Rows are padded by 8 halves so that they stay
// 16-byte aligned and the eight rows of an 8x8 matrix fall in distinct
// banks. Accumulators are float.
//
// Fragment layout of mma.m16n8k16 (f16 A/B, f32 C), lane = 4*g + t:
//
//	A (16x16, row): a0a1 = A[g][2t..2t+1]  a2a3 = A[g+8][2t..]  a4a5 = A[g][2t+8..]  a6a7 = A[g+8][2t+8..]
//	B (16x8, col):  b0b1 = B[2t..2t+1][g]  b2b3 = B[2t+8..][g]
//	C (16x8):       c0c1 = C[g][2t..2t+1]  c2c3 = C[g+8][2t..2t+1]

var (
	half2    = types.NewVector(2, types.Half)
	half8    = types.NewVector(8, types.Half)
	word4    = types.NewVector(4, i32)
	mmaFloat = types.NewStruct(f32, f32, f32, f32)
)

// loadHalf8 reads base[idx .. idx+7] of a half tensor (16-byte aligned)
// as one 128-bit load; zero where ok is false.
func (k *kernel) loadHalf8(base, idx, ok value.Value) value.Value {
	p := k.at(base, k.sel(ok, idx, ci(0)))
	l := k.b.NewLoad(half8, k.b.NewBitCast(p, types.NewPointer(half8)))
	l.Align = 16
	return k.sel(ok, l, constant.NewZeroInitializer(half8))
}

// load8 reads base[idx .. idx+7] (idx a multiple of 8) as floats: one
// 128-bit load from a half tensor, eight loads from a float one. The
// halves travel as four i32 words: LLVM 16's NVPTX backend (clang on the
// GPU machine) fails on element access to <8 x half> once its optimizer
// has rewritten it.
func (k *kernel) load8(base, idx value.Value) []value.Value {
	out := make([]value.Value, 8)
	if elemOf(base) != types.Half {
		for j := range out {
			out[j] = k.loadAt(base, k.add(idx, ci(j)))
		}
		return out
	}
	return k.unpack8(k.loadWords(base, idx))
}

// loadWords reads base[idx .. idx+7] of a half tensor (idx a multiple of
// 8) as four i32 words in one 128-bit load, for unpack8 to convert where
// they are used.
func (k *kernel) loadWords(base, idx value.Value) value.Value {
	l := k.b.NewLoad(word4, k.b.NewBitCast(k.at(base, idx), types.NewPointer(word4)))
	l.Align = 16
	return l
}

// loadWordsAhead is loadWords as inline PTX with a side effect, so that
// neither LLVM nor ptxas moves it: the GEMM core issues it before its K
// loop for the epilogue, which would otherwise find the load sunk next to
// its use, after the loop.
func (k *kernel) loadWordsAhead(base, idx value.Value) value.Value {
	sig := types.NewFunc(types.NewStruct(i32, i32, i32, i32), types.I64)
	asm := llir.NewInlineAsm(types.NewPointer(sig), "ld.global.v4.u32 {$0, $1, $2, $3}, [$4];", "=r,=r,=r,=r,l")
	asm.SideEffect = true
	r := k.b.NewCall(asm, k.globalAddr(k.at(base, idx)))
	var v value.Value = constant.NewUndef(word4)
	for w := 0; w < 4; w++ {
		v = k.b.NewInsertElement(v, k.b.NewExtractValue(r, uint64(w)), ci(w))
	}
	return v
}

// vec8 holds eight floats as one <8 x float> value, for floats8.
func (k *kernel) vec8(vals []value.Value) value.Value {
	var v value.Value = constant.NewUndef(types.NewVector(8, f32))
	for j, x := range vals {
		v = k.b.NewInsertElement(v, x, ci(j))
	}
	return v
}

// floats8 is the eight floats of v: a vec8, or eight halves loaded as
// four i32 words (unpack8).
func (k *kernel) floats8(v value.Value) []value.Value {
	if vt, ok := v.Type().(*types.VectorType); !ok || !vt.ElemType.Equal(f32) {
		return k.unpack8(v)
	}
	out := make([]value.Value, 8)
	for j := range out {
		out[j] = k.b.NewExtractElement(v, ci(j))
	}
	return out
}

// unpack8 is the eight floats of eight halves loaded as four i32 words.
func (k *kernel) unpack8(l value.Value) []value.Value {
	out := make([]value.Value, 8)
	for j := range out {
		var w value.Value = k.b.NewExtractElement(l, ci(j/2))
		if j%2 == 1 {
			w = k.b.NewLShr(w, ci(16))
		}
		h := k.b.NewBitCast(k.b.NewTrunc(w, types.I16), types.Half)
		out[j] = k.b.NewFPExt(h, f32)
	}
	return out
}

// store8 rounds eight floats to half and writes them to base[idx ..
// idx+7] (idx a multiple of 8) in one 128-bit store, as four i32 words
// (see load8).
func (k *kernel) store8(base, idx value.Value, vals []value.Value) {
	var v value.Value = constant.NewUndef(word4)
	for w := 0; w < 4; w++ {
		v = k.b.NewInsertElement(v, k.packHalves(vals[2*w], vals[2*w+1]), ci(w))
	}
	st := k.b.NewStore(v, k.b.NewBitCast(k.at(base, idx), types.NewPointer(word4)))
	st.Align = 16
}

// storeSharedWord writes the i32 w (two halves) to a shared half array at
// an even index.
func (k *kernel) storeSharedWord(buf *llir.Global, idx, w value.Value) {
	wp := types.NewPointer(i32)
	wp.AddrSpace = 3
	st := k.b.NewStore(w, k.b.NewBitCast(k.sharedAt(buf, idx), wp))
	st.Align = 4
}

// loadSharedWords reads eight halves of a shared half array (at an index
// that is a multiple of 8) as four i32 words in one 128-bit load, for
// unpack8.
func (k *kernel) loadSharedWords(buf *llir.Global, idx value.Value) value.Value {
	vp := types.NewPointer(word4)
	vp.AddrSpace = 3
	l := k.b.NewLoad(word4, k.b.NewBitCast(k.sharedAt(buf, idx), vp))
	l.Align = 16
	return l
}

// storeHalf8 writes eight halves to a shared half array at an index that
// is a multiple of 8, as one 128-bit store.
func (k *kernel) storeHalf8(buf *llir.Global, idx, v value.Value) {
	vp := types.NewPointer(half8)
	vp.AddrSpace = 3
	st := k.b.NewStore(v, k.b.NewBitCast(k.sharedAt(buf, idx), vp))
	st.Align = 16
}

// cpAsync16 copies src's eight halves to dst[at .. at+7] in shared memory
// asynchronously (cp.async.cg, 16 bytes, bypassing L1, or cp.async.ca
// through L1 where src.reread), zeros where src.ok is false (a source
// size of 0 bytes; the address stays in bounds).
// Inline PTX rather than llvm.nvvm.cp.async.cg.shared.global.16.s, which
// LLVM 16 (the GPU machine's clang) lacks; both addresses are 64-bit
// registers in their own state space, as llc writes them.
func (k *kernel) cpAsync16(dst *llir.Global, at value.Value, src half8Src) {
	from := k.globalAddr(k.at(src.base, src.index(k)))
	sig := types.NewFunc(types.Void, types.I64, types.I64, i32)
	level := "cg"
	if src.reread {
		level = "ca"
	}
	asm := llir.NewInlineAsm(types.NewPointer(sig), "cp.async."+level+".shared.global [$0], [$1], 16, $2;", "l,l,r,~{memory}")
	asm.SideEffect = true
	k.b.NewCall(asm, k.b.NewPtrToInt(k.sharedAt(dst, at), types.I64), from, k.sel(src.ok, ci(16), ci(0)))
}

// globalAddr is a half pointer's global-window address as an i64, the
// operand of inline PTX in the global state space.
func (k *kernel) globalAddr(p value.Value) value.Value {
	gp := types.NewPointer(types.Half)
	gp.AddrSpace = 1
	return k.b.NewPtrToInt(k.b.NewAddrSpaceCast(p, gp), types.I64)
}

// cpAsyncCommit closes the thread's group of cp.async copies issued so far.
func (k *kernel) cpAsyncCommit() {
	k.b.NewCall(k.mod.getIntrinsic("llvm.nvvm.cp.async.commit.group", types.Void))
}

// cpAsyncWait waits until at most n of the thread's cp.async groups are
// still pending.
func (k *kernel) cpAsyncWait(n int) {
	k.b.NewCall(k.mod.getIntrinsic("llvm.nvvm.cp.async.wait.group", types.Void, i32), ci(n))
}

// sharedFloats views a shared half array as floats (half as many).
func (k *kernel) sharedFloats(buf *llir.Global) value.Value {
	n := buf.ContentType.(*types.ArrayType).Len / 2
	pt := types.NewPointer(types.NewArray(n, f32))
	pt.AddrSpace = 3
	return k.b.NewBitCast(buf, pt)
}

// sharedFloatAt is &cs[idx] of a sharedFloats view.
func (k *kernel) sharedFloatAt(cs value.Value, idx value.Value) value.Value {
	return k.b.NewGetElementPtr(cs.Type().(*types.PointerType).ElemType, cs, ci(0), idx)
}

// storeFloat2 writes a and b to cs[idx] and cs[idx+1] (idx even) as one
// 64-bit shared store.
func (k *kernel) storeFloat2(cs value.Value, idx, a, b value.Value) {
	f2 := types.NewVector(2, f32)
	v := k.b.NewInsertElement(k.b.NewInsertElement(constant.NewUndef(f2), a, ci(0)), b, ci(1))
	vp := types.NewPointer(f2)
	vp.AddrSpace = 3
	st := k.b.NewStore(v, k.b.NewBitCast(k.sharedFloatAt(cs, idx), vp))
	st.Align = 8
}

// mma16816 is D = A B + C on one m16n8k16 tile.
func (k *kernel) mma16816(a [4]value.Value, b [2]value.Value, c [4]value.Value) [4]value.Value {
	f := k.mod.getIntrinsic("llvm.nvvm.mma.m16n8k16.row.col.f32.f32", mmaFloat,
		half2, half2, half2, half2, half2, half2, f32, f32, f32, f32)
	r := k.b.NewCall(f, a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], c[2], c[3])
	var d [4]value.Value
	for i := range d {
		d[i] = k.b.NewExtractValue(r, uint64(i))
	}
	return d
}

// staticSharedLimit is the most static shared memory a kernel may have.
const staticSharedLimit = 48 << 10

// sharedHalf declares a half array of n elements in shared memory,
// aligned to align bytes: a static one up to 48 KiB; above, the kernel's
// dynamic shared memory, an extern array the launch must size to
// dynamicBytes.
func (k *kernel) sharedHalf(what string, n, align int) (g *llir.Global, dynamicBytes int) {
	if 2*n <= staticSharedLimit {
		g = k.sharedBuffer(what, n)
		g.ContentType = types.NewArray(uint64(n), types.Half)
		g.Init = constant.NewUndef(g.ContentType)
		g.Typ = types.NewPointer(g.ContentType)
		g.Typ.AddrSpace = 3
		g.Align = llir.Align(align)
		return g, 0
	}
	g = k.mod.m.NewGlobal(k.name+"_"+what, types.NewArray(0, types.Half))
	g.Linkage = enum.LinkageExternal
	g.AddrSpace = 3
	g.Typ.AddrSpace = 3
	g.Align = llir.Align(align)
	return g, 2 * n
}

// ldmatrix loads n (2 or 4) 8x8 matrices of halves from shared memory in
// one warp-wide instruction (ldmatrix.sync.aligned.m8n8.xN.b16): lane l
// gives the address of row l%8 of matrix l/8 (16-byte aligned; lanes 16
// and up are ignored for n = 2), and result i holds, in lane l, halves
// 2*(l%4) and 2*(l%4)+1 of row l/4 of matrix i: an mma fragment register.
func (k *kernel) ldmatrix(buf *llir.Global, idx value.Value, n int) []value.Value {
	sp := types.NewPointer(types.I8)
	sp.AddrSpace = 3
	fields := make([]types.Type, n)
	for i := range fields {
		fields[i] = i32
	}
	name := fmt.Sprintf("llvm.nvvm.ldmatrix.sync.aligned.m8n8.x%d.b16", n)
	r := k.b.NewCall(k.mod.getIntrinsic(name, types.NewStruct(fields...), sp), k.b.NewBitCast(k.sharedAt(buf, idx), sp))
	out := make([]value.Value, n)
	for i := range out {
		out[i] = k.b.NewBitCast(k.b.NewExtractValue(r, uint64(i)), half2)
	}
	return out
}

// emitGemmTC writes the tensor-core GEMM kernel; the tile's warp tile TM
// x TN must be a multiple of 16 x 8 that divides BM x BN, and BK a
// multiple of 16.
//
// persist, above 1, asks for a persistent wgmma core of that many blocks
// (emitPersistentWgmma) where the tile takes one; elsewhere it is
// ignored.
func emitGemmTC(k *kernel, p gemmProblem, t costmodel.Tile, sk splitK, persist int) launchShape {
	blk := newGemmBlock(k, p, t, sk)
	blk.halfShared = true
	lane, warp := k.rem(k.tid(), 32), k.div(k.tid(), 32)
	g, tq := k.div(lane, 4), k.rem(lane, 4)
	warpRows, warpCols := t.Warps()
	wm, wn := k.div(warp, warpCols), k.rem(warp, warpCols)
	warpM, warpN := t.TM, t.TN
	mTiles, nTiles := warpM/16, warpN/8
	ld := t.BK + 8 // padded row of halves: 16-byte aligned, the 8 rows an ldmatrix reads in distinct banks
	// ldmatrix row addresses: lane l gives row l%8 of matrix l/8.
	mat, r8 := k.div(lane, 8), k.rem(lane, 8)
	aRow, aCol := k.add(r8, k.mul(k.rem(mat, 2), ci(8))), k.mul(k.div(mat, 2), ci(8))
	bRow, bCol := k.add(r8, k.mul(k.div(mat, 2), ci(8))), k.mul(k.rem(mat, 2), ci(8))
	acc := make([]value.Value, mTiles*nTiles*4)
	for i := range acc {
		acc[i] = cf(0)
	}
	// One shared array holds the A stages, then the B stages, and after
	// the K loop the output tile on its way out (float rows padded by 8).
	stages := 1
	at := func(x, kk value.Value) value.Value { return k.madd(x, ld, kk) }
	probe := blk.operands(k, nil, nil, at, at)
	pipelined := blk.vectorized(probe[0]) && blk.vectorized(probe[1])
	if pipelined {
		stages = t.PipelineStages()
	}
	aStage, bStage := t.BM*ld, t.BN*ld
	// On Hopper a tile of one warpgroup per 64 rows runs on wgmma, its
	// stages in 128-byte swizzled rows (see wgmma.go).
	hopper := k.mod.hopper && pipelined && t.WarpgroupTile()
	align := 16
	if hopper {
		at = func(x, kk value.Value) value.Value { return swizzledAt(k, x, kk) }
		aStage, bStage = t.BM*t.BK, t.BN*t.BK
		stages, align = t.WgmmaStages(), 1024
	}
	bOff := stages * aStage
	cld := t.BN + 8
	// The copy engine stages the operands where the problem has tensor
	// maps for both and a slice row is the 128-byte swizzle's span; its
	// mbarriers follow the stages (and the parked output tile).
	tma := hopper && p.tmaA != nil && p.tmaB != nil && t.BK*2 == tmaRowBytes && p.Batch == 1 && t.BM <= 256 && t.BN <= 256
	words := max(stages*(aStage+bStage), 2*warpM*cld)
	var bars *mbarriers
	if tma {
		bars = &mbarriers{at: (words + 3) / 4 * 4}
		words = bars.at + 4*stages
	}
	ab, dynamicBytes := k.sharedHalf("AB", words, align)
	if bars != nil {
		bars.buf = ab
	}
	// fragments reads the warp's A and B fragments of the k16 step at ks
	// of the slice staged at aBase and bBase (As[mm][kk], Bs[nn][kk]: k
	// contiguous): one ldmatrix.x4 per 16x16 A fragment (matrices: rows
	// 0-7 and 8-15 at k 0-7, then at k 8-15) and per two 16x8 B fragments
	// (n 0-7 at k 0-7 and 8-15, then n 8-15); x2 for a last odd one.
	// Flat: mTiles x 4 A registers, then nTiles x 2 B registers.
	fragments := func(aBase, bBase value.Value, ks int) []value.Value {
		var f []value.Value
		for i := 0; i < mTiles; i++ {
			row := k.add(k.mul(wm, ci(warpM)), k.add(ci(16*i), aRow))
			f = append(f, k.ldmatrix(ab, k.add(aBase, k.madd(row, ld, k.add(ci(ks), aCol))), 4)...)
		}
		for j := 0; j < nTiles; j += 2 {
			ncol := k.add(k.mul(wn, ci(warpN)), k.add(ci(8*j), bRow))
			f = append(f, k.ldmatrix(ab, k.add(bBase, k.madd(ncol, ld, k.add(ci(ks), bCol))), 2*min(nTiles-j, 2))...)
		}
		return f
	}
	// mmaStep runs the warp's mma tiles of one k16 step on fragments f,
	// emitting the given copies (the next slices' cp.async) spread between
	// its groups of mma, so that every warp's issue of them overlaps the
	// tensor cores' work instead of following a barrier all at once.
	mmaStep := func(f, acc []value.Value, copies []func()) []value.Value {
		out := append([]value.Value{}, acc...)
		groups := (nTiles + 1) / 2
		for j := 0; j < nTiles; j++ {
			bf := [2]value.Value{f[4*mTiles+2*j], f[4*mTiles+2*j+1]}
			for i := 0; i < mTiles; i++ {
				o := 4 * (i*nTiles + j)
				d := k.mma16816([4]value.Value(f[4*i:4*i+4]), bf, [4]value.Value(out[o:o+4]))
				copy(out[o:o+4], d[:])
			}
			if j%2 == 1 || j == nTiles-1 {
				g := j / 2
				for _, c := range copies[g*len(copies)/groups : (g+1)*len(copies)/groups] {
					c()
				}
			}
		}
		return out
	}
	// mmaSlice runs one whole BK slice.
	mmaSlice := func(aBase, bBase value.Value, acc []value.Value) []value.Value {
		for ks := 0; ks < t.BK; ks += 16 {
			acc = mmaStep(fragments(aBase, bBase, ks), acc, nil)
		}
		return acc
	}
	bAt := func(x, kk value.Value) value.Value { return k.add(ci(bOff), at(x, kk)) }
	ops := blk.operands(k, ab, ab, at, bAt)
	cluster := blk.sk.Cluster
	vec := (blk.ways == 1 || cluster) && p.store8 != nil && p.N%8 == 0
	// The epilogue parks group rows of warps at a time: all of them
	// where their float rows fit the stages (one barrier pair and every
	// warp parking at once), else one (a cluster's sum goes row by row).
	group := 1
	if !cluster && 2*t.BM*cld <= stages*(aStage+bStage) {
		group = warpRows
	}
	if persist > 1 && hopper && vec && !cluster && blk.ways == 1 && p.Batch == 1 && t.BM <= 2*t.BK && t.BN%64 == 0 {
		shape := emitPersistentWgmma(k, blk, persist, wgmmaRing{stages, aStage, bStage, ab, bars}, at, bAt)
		shape.shared = dynamicBytes
		return shape
	}
	// The epilogue's output-shaped operands (a residual), loaded before
	// the K loop (prefetch[pass][round][tensor], pass a multiple of group) where it is one slice
	// long and the registers are few: their reads then overlap the
	// slice's instead of following the wgmma. ResNet-50's layer1 1x1+add
	// (K 64, 128x64) went 58.4 -> 48.6 us on an H100; longer loops
	// (layer2-3, K 128-256) lost 0.5-1.2 us each, their own copies
	// already overlapping the residual's latency across blocks.
	var prefetch [][][]value.Value
	if hopper && vec && !cluster && p.Batch == 1 && p.K <= t.BK && prefetchFits(t, len(p.prefetch8)) {
		prefetch = make([][][]value.Value, warpRows)
		for pass := 0; pass < warpRows; pass += group {
			for e := 0; e < group*warpM*t.BN/8; e += t.Threads() {
				pc := blk.epiloguePiece(k, pass, group, e)
				idx := k.sel(pc.ok, k.madd(pc.m, p.N, pc.n), ci(0))
				var words []value.Value
				for _, param := range p.prefetch8 {
					words = append(words, k.loadWordsAhead(param, idx))
				}
				prefetch[pass] = append(prefetch[pass], words)
			}
		}
	}
	var colOps map[value.Value]value.Value
	if vec && !cluster {
		colOps = blk.columnOperands(k)
	}
	switch {
	case hopper:
		acc, _ = tcWgmma(k, blk, ops, wgmmaRing{stages, aStage, bStage, ab, bars}, acc, false, ci(0))
	case pipelined:
		acc = tcPipelined(k, blk, ops, stages, aStage, bStage, acc, fragments, mmaStep)
	default:
		acc = tcRegisterStaged(k, blk, ops, bOff, acc, mmaSlice)
	}
	// The epilogue: each row of warps (wm) in turn parks its accumulators
	// in shared memory as float pairs (conflict-free: rows 8 floats apart
	// shift a quad's pairs by 8 banks); then every thread takes
	// consecutive n of the parked rows, so the stores (and the epilogue's
	// loads) of a warp run along the output's contiguous dimension instead
	// of touching eight rows at once: eight n per thread, in 128-bit
	// accesses, where the problem stores eight at a time.
	cs := k.sharedFloats(ab)
	blk.columnFloats(k, colOps)
	k.barrier()
	for pass := 0; pass < warpRows; pass += group {
		park := func() {
			// The warp row's first parked row.
			top := k.mul(k.sub(wm, ci(pass)), ci(warpM))
			if hopper {
				// Warp w of the warpgroup: rows 16w .. 16w+15, every n-tile.
				for j := 0; j < t.BN/8; j++ {
					for h := 0; h < 2; h++ {
						row := k.add(top, k.add(k.mul(k.rem(warp, 4), ci(16)), k.add(ci(8*h), g)))
						col := k.add(ci(8*j), k.mul(tq, ci(2)))
						o := 4*j + 2*h
						k.storeFloat2(cs, k.madd(row, cld, col), acc[o], acc[o+1])
					}
				}
				return
			}
			for i := 0; i < mTiles; i++ {
				for j := 0; j < nTiles; j++ {
					for h := 0; h < 2; h++ {
						row := k.add(top, k.add(ci(16*i+8*h), g))
						col := k.add(k.mul(wn, ci(warpN)), k.add(ci(8*j), k.mul(tq, ci(2))))
						o := 4*(i*nTiles+j) + 2*h
						k.storeFloat2(cs, k.madd(row, cld, col), acc[o], acc[o+1])
					}
				}
			}
		}
		if group == warpRows {
			park()
		} else {
			k.ifThen(k.icmp(enum.IPredEQ, wm, ci(pass)), park)
		}
		if cluster {
			// Every block of the cluster has parked this pass's rows.
			k.clusterBarrier()
			blk.clusterSum(k, cs, pass*warpM, warpM, cld, vec)
			k.clusterBarrier() // nobody reads them any more
			continue
		}
		k.barrier()
		if vec {
			for e := 0; e < group*warpM*t.BN/8; e += t.Threads() {
				pc := blk.epiloguePiece(k, pass, group, e)
				pre := maps.Clone(colOps)
				if prefetch != nil {
					if pre == nil {
						pre = map[value.Value]value.Value{}
					}
					for i, param := range p.prefetch8 {
						pre[param] = prefetch[pass][e/t.Threads()][i]
					}
				}
				k.ifThen(pc.ok, func() {
					at := k.madd(pc.row, cld, pc.col)
					v := append(k.loadFloat4(cs, at), k.loadFloat4(cs, k.add(at, ci(4)))...)
					p.store8(k, blk.z, pc.m, pc.n, v, pre)
				})
			}
		} else {
			for e := 0; e < group*warpM*t.BN; e += t.Threads() {
				lin := k.add(k.tid(), ci(e))
				row, col := k.div(lin, t.BN), k.rem(lin, t.BN)
				v := k.b.NewLoad(f32, k.sharedFloatAt(cs, k.madd(row, cld, col)))
				blk.storeResult(k, k.add(blk.m0, k.add(ci(pass*warpM), row)), k.add(blk.n0, col), v)
			}
		}
		k.barrier()
	}
	shape := blk.launch()
	shape.shared = dynamicBytes
	return shape
}

// columnOperands are the epilogue's per-column operands (a bias) as four
// words each, loaded before the K loop where the thread's n is the same
// in every round of the vectorized epilogue (its threads a multiple of
// BN/8): one load overlapping the loop rather than one per round after
// it, each waited for between the epilogue's barriers. Nil where there
// are none or the threads do not keep their n.
func (b *gemmBlock) columnOperands(k *kernel) map[value.Value]value.Value {
	t, p := b.t, b.p
	if len(p.col8) == 0 || t.Threads()%(t.BN/8) != 0 {
		return nil
	}
	pc := b.epiloguePiece(k, 0, 1, 0)
	idx := k.sel(k.lt(pc.n, ci(p.N)), pc.n, ci(0))
	ops := map[value.Value]value.Value{}
	for _, param := range p.col8 {
		ops[param] = k.loadWordsAhead(param, idx)
	}
	return ops
}

// columnFloats converts the per-column operands of ops (columnOperands)
// to floats in place, once: converted where every round of the epilogue
// is dominated, they are not converted again in each.
func (b *gemmBlock) columnFloats(k *kernel, ops map[value.Value]value.Value) {
	for _, param := range b.p.col8 {
		if w, ok := ops[param]; ok {
			ops[param] = k.vec8(k.unpack8(w))
		}
	}
}

// epiloguePiece is the epilogue's round e (a multiple of the block's
// threads) of 128-bit pieces in the pass from warp row pass (the rows of
// group rows of warps): this thread's eight consecutive n of a parked
// row (row, col in the parked rows), at C's (m, n), and whether it
// stores them.
type epiloguePiece struct {
	row, col, m, n, ok value.Value
}

func (b *gemmBlock) epiloguePiece(k *kernel, pass, group, e int) epiloguePiece {
	t, p := b.t, b.p
	pieces := group * t.TM * t.BN / 8
	lin := k.add(k.tid(), ci(e))
	row, col := k.div(lin, t.BN/8), k.mul(k.rem(lin, t.BN/8), ci(8))
	m, n := k.add(b.m0, k.add(ci(pass*t.TM), row)), k.add(b.n0, col)
	ok := k.and(k.lt(m, ci(p.M)), k.lt(n, ci(p.N)))
	if e+t.Threads() > pieces {
		ok = k.and(ok, k.lt(lin, ci(pieces)))
	}
	return epiloguePiece{row: row, col: col, m: m, n: n, ok: ok}
}

// prefetchFits says a thread of tile t may hold the epilogue's
// output-shaped operands (tensors of them, at least one) from before the
// K loop to the epilogue, 128 bits a piece, in MaxPrefetchRegs registers.
func prefetchFits(t costmodel.Tile, tensors int) bool {
	return tensors > 0 && 4*tensors*ceilDiv(t.BM*t.BN/8, t.Threads()) <= MaxPrefetchRegs
}

// MaxPrefetchRegs bounds the registers that the epilogue's prefetched
// operands take across the K loop: 16 is one residual of a 128x64
// warpgroup tile (four 128-bit pieces a thread), whose kernels keep
// three blocks an SM with them (64 registers and 16 more).
const MaxPrefetchRegs = 16

// clusterSum is the epilogue of a K split whose blocks form a cluster
// (splitK.Cluster): each block has parked its partial sums of the rows
// from row0 (rows of cld floats in cs), and takes its share of them: the
// cluster's parked values added up, in split order, read through
// distributed shared memory, then stored as the problem stores (eight at
// a time with vec).
func (b *gemmBlock) clusterSum(k *kernel, cs value.Value, row0, rows, cld int, vec bool) {
	t, p := b.t, b.p
	width := 1
	if vec {
		width = 8
	}
	items := rows * t.BN / width
	share := ceilDiv(items, b.ways)
	rank := k.rem(k.ctaid('z'), b.ways)
	for e := 0; e < share; e += t.Threads() {
		idx := k.add(k.tid(), ci(e))
		lin := k.add(k.mul(rank, ci(share)), idx)
		row, col := k.div(lin, t.BN/width), k.mul(k.rem(lin, t.BN/width), ci(width))
		m, n := k.add(b.m0, k.add(ci(row0), row)), k.add(b.n0, col)
		ok := k.and(k.lt(m, ci(p.M)), k.lt(n, ci(p.N)))
		if e+t.Threads() > share {
			ok = k.and(ok, k.lt(idx, ci(share)))
		}
		if share*b.ways > items {
			ok = k.and(ok, k.lt(lin, ci(items)))
		}
		k.ifThen(ok, func() {
			var addr value.Value = k.b.NewPtrToInt(k.sharedFloatAt(cs, k.madd(row, cld, col)), types.I64)
			sum := make([]value.Value, width)
			for i := range sum {
				sum[i] = cf(0)
			}
			for r := 0; r < b.ways; r++ {
				for i := 0; i < width; i += 4 {
					at := addr
					if i > 0 {
						// (4 floats further along the row)
						at = k.b.NewAdd(addr, constant64(int64(4*i)))
					}
					part := k.loadCluster(at, ci(r), min(width, 4))
					for j, v := range part {
						sum[i+j] = k.fadd(sum[i+j], v)
					}
				}
			}
			if vec {
				p.store8(k, b.z, m, n, sum, nil)
				return
			}
			p.store(k, b.z, m, n, sum[0])
		})
	}
}

// loadCluster reads n (1 or 4) consecutive floats at shared address addr
// (16-byte aligned for 4) in the shared memory of the cluster's block of
// rank rank: mapa gives the address there, ld.shared::cluster reads it.
func (k *kernel) loadCluster(addr, rank value.Value, n int) []value.Value {
	outs, cons := make([]string, n), make([]string, 0, n+3)
	fields := make([]types.Type, n)
	for i := range outs {
		outs[i] = fmt.Sprintf("$%d", i)
		cons = append(cons, "=f")
		fields[i] = f32
	}
	cons = append(cons, "l", "r", "~{memory}")
	vec, dst := "", outs[0]
	if n > 1 {
		vec, dst = fmt.Sprintf(".v%d", n), "{"+strings.Join(outs, ", ")+"}"
	}
	text := fmt.Sprintf("{\n\t.reg .b64 %%peer;\n\tmapa.shared::cluster.u64 %%peer, $%d, $%d;\n\tld.shared::cluster%s.f32 %s, [%%peer];\n\t}",
		n, n+1, vec, dst)
	var ret types.Type = f32 // one output is returned as itself
	if n > 1 {
		ret = types.NewStruct(fields...)
	}
	a := llir.NewInlineAsm(types.NewPointer(types.NewFunc(ret, types.I64, i32)), text, strings.Join(cons, ","))
	a.SideEffect = true
	r := k.b.NewCall(a, addr, rank)
	if n == 1 {
		return []value.Value{r}
	}
	out := make([]value.Value, n)
	for i := range out {
		out[i] = k.b.NewExtractValue(r, uint64(i))
	}
	return out
}

// clusterBarrier waits until every thread of the thread-block cluster
// has arrived: shared memory written before it in any of the cluster's
// blocks is visible to all after it (arrive releases, wait acquires).
func (k *kernel) clusterBarrier() {
	k.asm("barrier.cluster.arrive.aligned;\n\tbarrier.cluster.wait.aligned;")
}

// loadFloat4 reads cs[idx .. idx+3] of a sharedFloats view (idx a
// multiple of 4) as one 128-bit shared load.
func (k *kernel) loadFloat4(cs value.Value, idx value.Value) []value.Value {
	f4 := types.NewVector(4, f32)
	vp := types.NewPointer(f4)
	vp.AddrSpace = 3
	l := k.b.NewLoad(f4, k.b.NewBitCast(k.sharedFloatAt(cs, idx), vp))
	l.Align = 16
	out := make([]value.Value, 4)
	for i := range out {
		out[i] = k.b.NewExtractElement(l, ci(i))
	}
	return out
}

// sliceCopies are the cp.async of the K slice at k0 into stage (A's
// stages aStage halves apart, B's bStage), one function per 128-bit piece
// this thread copies, its index arithmetic included.
func (b *gemmBlock) sliceCopies(k *kernel, ops [2]operand, k0, stage value.Value, aStage, bStage int) []func() {
	return b.sliceCopiesOf(k, ops, b.sliceAt(k, k0), stage, aStage, bStage)
}

// sliceCopiesOf is sliceCopies of the slice sl.
func (b *gemmBlock) sliceCopiesOf(k *kernel, ops [2]operand, sl slice, stage value.Value, aStage, bStage int) []func() {
	var out []func()
	for i, o := range ops {
		for e := 0; e < b.vectors(o); e += b.t.Threads() {
			out = append(out, func() {
				base := k.mul(stage, ci([]int{aStage, bStage}[i]))
				at, src, guard := b.vector(k, o, sl, e)
				if guard != nil {
					k.ifThen(guard, func() { k.cpAsync16(o.buf, k.add(base, at), src) })
					return
				}
				k.cpAsync16(o.buf, k.add(base, at), src)
			})
		}
	}
	return out
}

// issueCopies emits copies and closes them as one cp.async group.
func (k *kernel) issueCopies(copies []func()) {
	for _, c := range copies {
		c()
	}
	k.cpAsyncCommit()
}

// nextStage is the pipeline stage after s of stages (wrapping).
func nextStage(k *kernel, s value.Value, stages int) value.Value {
	s1 := k.add(s, ci(1))
	return k.sel(k.lt(s1, ci(stages)), s1, ci(0))
}

// tcRegisterStaged runs the K loop with one shared slice: the next slice's
// loads are issued into registers before the current slice's mma work and
// stored (rounded to half) after it.
func tcRegisterStaged(k *kernel, blk *gemmBlock, ops [2]operand, bOff int, acc []value.Value,
	mmaSlice func(aBase, bBase value.Value, acc []value.Value) []value.Value) []value.Value {
	t := blk.t
	storeSlice := func(vals []staged) {
		for _, v := range vals {
			if v.vec && v.guard != nil {
				k.ifThen(v.guard, func() { k.storeHalf8(v.buf, v.at, v.v) })
				continue
			}
			if v.vec {
				k.storeHalf8(v.buf, v.at, v.v)
				continue
			}
			st := k.b.NewStore(k.b.NewFPTrunc(v.v, types.Half), k.sharedAt(v.buf, v.at))
			st.Align = 2
		}
	}
	storeSlice(blk.loadSlice(k, blk.kStart, ops))
	k.barrier()
	return k.loop(blk.kStart, blk.kEnd, t.BK, acc, func(k0 value.Value, acc []value.Value) []value.Value {
		next := blk.loadSlice(k, k.add(k0, ci(t.BK)), ops)
		out := mmaSlice(ci(0), ci(bOff), acc)
		k.barrier()
		storeSlice(next)
		k.barrier()
		return out
	})
}

// tcPipelined runs the K loop as a multi-stage cp.async pipeline (both
// operands in 128-bit pieces): stages slices live in shared memory (A's
// aStage halves each from 0, B's bStage each after them, where ops puts
// them), stages-1 in flight while the mma work runs on the oldest. The
// fragments are double-buffered in registers, one k16 step ahead of the
// mma that use them, across slices too (as CUTLASS's multistage loop does):
//
//	issue slices 0 .. S-2 (one cp.async group each); wait for slice 0; barrier
//	read slice 0's first fragments
//	for each slice i, k16 step s of n:
//	    read step s+1's fragments (the next slice's first at s = n-1)
//	    mma on step s's, issuing slice i+S-1 into the stage slice i-1 used
//	        (zero-filled past K) between them while s < n-1
//	    at s = n-2: close the copies' group, wait until slice i+1 has landed
//	        (at most S-2 groups pending); barrier
//
// The barrier also tells every warp that the others are done reading
// slice i, whose stage the next slice's copies overwrite; one barrier per
// slice, passed while the tensor cores still work through step n-2's mma.
func tcPipelined(k *kernel, blk *gemmBlock, ops [2]operand, stages, aStage, bStage int, acc []value.Value,
	fragments func(aBase, bBase value.Value, ks int) []value.Value,
	mmaStep func(f, acc []value.Value, copies []func()) []value.Value) []value.Value {
	t := blk.t
	steps := t.BK / 16
	bOff := stages * aStage
	copies := func(k0, stage value.Value) []func() { return blk.sliceCopies(k, ops, k0, stage, aStage, bStage) }
	for s := 0; s < stages-1; s++ {
		k.issueCopies(copies(k.add(blk.kStart, ci(s*t.BK)), ci(s)))
	}
	next := func(s value.Value) value.Value { return nextStage(k, s, stages) }
	read := func(stage value.Value, ks int) []value.Value {
		return fragments(k.mul(stage, ci(aStage)), k.add(ci(bOff), k.mul(stage, ci(bStage))), ks)
	}
	sync := func() {
		k.cpAsyncWait(stages - 2)
		k.barrier()
	}
	if steps == 1 {
		// One k16 step per slice: no step to overlap the barrier with.
		carried := append(append([]value.Value{}, acc...), ci(0), ci(stages-1))
		carried = k.loop(blk.kStart, blk.kEnd, t.BK, carried, func(k0 value.Value, c []value.Value) []value.Value {
			rd, fill := c[len(acc)], c[len(acc)+1]
			sync()
			out := mmaStep(read(rd, 0), c[:len(acc)], copies(k.add(k0, ci((stages-1)*t.BK)), fill))
			k.cpAsyncCommit()
			return append(out, next(rd), next(fill))
		})
		k.cpAsyncWait(0)
		return carried[:len(acc)]
	}
	sync()
	first := read(ci(0), 0)
	// Carried: the accumulators, the first step's fragments, the stage to
	// read and the stage to fill.
	nf := len(first)
	carried := append(append(append([]value.Value{}, acc...), first...), ci(0), ci(stages-1))
	carried = k.loop(blk.kStart, blk.kEnd, t.BK, carried, func(k0 value.Value, c []value.Value) []value.Value {
		out, f := c[:len(acc)], c[len(acc):len(acc)+nf]
		rd, fill := c[len(acc)+nf], c[len(acc)+nf+1]
		pending := copies(k.add(k0, ci((stages-1)*t.BK)), fill)
		for s := 0; s < steps; s++ {
			var nextF []value.Value
			if s+1 < steps {
				nextF = read(rd, 16*(s+1))
			} else {
				nextF = read(next(rd), 0)
			}
			var mine []func()
			if s < steps-1 {
				from, to := s*len(pending)/(steps-1), (s+1)*len(pending)/(steps-1)
				mine = pending[from:to]
			}
			out = mmaStep(f, out, mine)
			if s == steps-2 {
				k.cpAsyncCommit()
				sync()
			}
			f = nextF
		}
		return append(append(out, f...), next(rd), next(fill))
	})
	k.cpAsyncWait(0) // the zero-filled slices past K, before the block ends
	return carried[:len(acc)]
}
