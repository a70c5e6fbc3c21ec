package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// Microbenchmark kernels measure the card's ceilings in the same run as a
// benchmark: the FP32 FMA rate, the fp16 tensor-core rate, DRAM bandwidth
// and launch overhead.
const (
	// PeakKernel does PeakFMAs fused multiply-adds per thread in
	// independent chains and writes one float per thread to p0.
	PeakKernel = "micro_fma_peak"
	// CopyKernel copies p0[i] to p1[i] for i < the element count baked in.
	CopyKernel = "micro_stream_copy"
	// EmptyKernel does nothing: back-to-back launches measure overhead.
	EmptyKernel = "micro_empty"
	// MMAPeakKernel has every warp do MMAPeakIters rounds of MMAChains
	// independent mma.m16n8k16 (f16 inputs, f32 accumulation) and write
	// one float per thread to p0: the fp16 tensor-core peak.
	MMAPeakKernel = "micro_mma_peak"

	PeakChains  = 8
	PeakIters   = 4096
	PeakThreads = 256
	// PeakFMAs per thread.
	PeakFMAs = PeakChains * PeakIters * 8

	MMAChains   = 8
	MMAPeakIter = 2048
	// MMAFLOPsPerWarp is the multiply-adds of one warp's run, counted as
	// two FLOPs each (an m16n8k16 is 16*8*16 of them).
	MMAFLOPsPerWarp = 2 * 16 * 8 * 16 * MMAChains * MMAPeakIter

	// WgmmaPeakKernel (Hopper targets only) has each warpgroup of a
	// PeakThreads block do WgmmaPeakIter rounds of four
	// wgmma.m64n256k16 (a 64-deep slice) on operands in shared memory,
	// one round in flight while the next is issued, and write one float
	// per thread to p0: the fp16 tensor-core peak of Hopper, which
	// mma.sync does not reach.
	WgmmaPeakKernel = "micro_wgmma_peak"
	WgmmaPeakIter   = 1024
	// WgmmaFLOPsPerWarpgroup is the FLOPs of one warpgroup's run.
	WgmmaFLOPsPerWarpgroup = 2 * 64 * 256 * 64 * WgmmaPeakIter
)

// MicroPTX compiles the microbenchmark kernels; the copy kernel moves
// copyElems floats. A Hopper target also gets WgmmaPeakKernel.
func MicroPTX(t Target, copyElems int) ([]byte, error) {
	mod := newModule()

	k := mod.makeKernel(PeakKernel, 1, PeakThreads)
	// Eight independent chains per thread keep the FMA pipes full; each
	// loop iteration does eight steps of every chain.
	chains := make([]value.Value, PeakChains)
	tid := k.sitofp(k.tid())
	for i := range chains {
		chains[i] = k.fadd(tid, cf(float64(i)))
	}
	a, b := cf(0.999999), cf(1e-7)
	chains = k.loop(ci(0), ci(PeakIters), 1, chains, func(_ value.Value, c []value.Value) []value.Value {
		next := append([]value.Value{}, c...)
		for step := 0; step < 8; step++ {
			for j := range next {
				next[j] = k.fma(next[j], a, b)
			}
		}
		return next
	})
	var sum value.Value = cf(0)
	for _, c := range chains {
		sum = k.fadd(sum, c)
	}
	k.store(sum, k.at(k.params[0], k.globalThread()))
	k.finish()

	c := mod.makeKernel(CopyKernel, 2, 256)
	i := c.globalThread()
	c.exitUnless(c.lt(i, ci(copyElems)))
	c.store(c.loadAt(c.params[0], i), c.at(c.params[1], i))
	c.finish()

	e := mod.makeKernel(EmptyKernel, 0, 32)
	e.finish()

	m := mod.makeKernel(MMAPeakKernel, 1, PeakThreads)
	// Operand fragments from the thread index (never all zero), reused
	// by every mma; the chains' accumulators depend only on themselves.
	h := m.b.NewFPTrunc(m.fmul(m.sitofp(m.tid()), cf(1.0/1024)), types.Half)
	var frag value.Value = constant.NewUndef(half2)
	frag = m.b.NewInsertElement(frag, h, ci(0))
	frag = m.b.NewInsertElement(frag, h, ci(1))
	fa := [4]value.Value{frag, frag, frag, frag}
	bf := [2]value.Value{frag, frag}
	acc := make([]value.Value, 4*MMAChains)
	for i := range acc {
		acc[i] = cf(0)
	}
	acc = m.loop(ci(0), ci(MMAPeakIter), 1, acc, func(_ value.Value, c []value.Value) []value.Value {
		next := append([]value.Value{}, c...)
		for j := 0; j < MMAChains; j++ {
			d := m.mma16816(fa, bf, [4]value.Value{next[4*j], next[4*j+1], next[4*j+2], next[4*j+3]})
			copy(next[4*j:], d[:])
		}
		return next
	})
	var total value.Value = cf(0)
	for _, c := range acc {
		total = m.fadd(total, c)
	}
	m.store(total, m.at(m.params[0], m.globalThread()))
	m.finish()

	if t.Hopper {
		wgmmaPeak(mod.makeKernel(WgmmaPeakKernel, 1, PeakThreads))
	}

	be, err := FindBackend()
	if err != nil {
		return nil, err
	}
	return be.Compile([]byte(mod.m.String()), t)
}

// wgmmaPeak writes WgmmaPeakKernel's body: a 64 x 64 A and a 256 x 64 B
// in the 128-byte swizzle (filled from the thread index, never all
// zero), read by every warpgroup's wgmma as the K loop of tcWgmma reads
// a stage.
func wgmmaPeak(k *kernel) {
	const rowsA, rowsB = 64, 256
	buf, _ := k.sharedHalf("AB", (rowsA+rowsB)*64, 1024)
	h := k.b.NewFPTrunc(k.fmul(k.sitofp(k.tid()), cf(1.0/1024)), types.Half)
	k.loop(k.tid(), ci((rowsA+rowsB)*64), PeakThreads, nil, func(i value.Value, _ []value.Value) []value.Value {
		k.b.NewStore(h, k.sharedAt(buf, i))
		return nil
	})
	k.asm("fence.proxy.async.shared::cta;")
	k.barrier()
	acc := make([]value.Value, rowsB/2)
	for i := range acc {
		acc[i] = cf(0)
	}
	acc = k.loop(ci(0), ci(WgmmaPeakIter), 1, acc, func(_ value.Value, c []value.Value) []value.Value {
		k.asm("wgmma.fence.sync.aligned;")
		out := c
		for ks := 0; ks < 64; ks += 16 {
			out = k.wgmma(rowsB, k.wgmmaDesc(buf, ci(ks)), k.wgmmaDesc(buf, ci(rowsA*64+ks)), out)
		}
		k.asm("wgmma.commit_group.sync.aligned;")
		return k.wgmmaWait(out, 1)
	})
	acc = k.wgmmaWait(acc, 0)
	var total value.Value = cf(0)
	for _, c := range acc {
		total = k.fadd(total, c)
	}
	k.store(total, k.at(k.params[0], k.globalThread()))
	k.finish()
}
