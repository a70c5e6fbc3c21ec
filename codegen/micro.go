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
)

// MicroPTX compiles the microbenchmark kernels; the copy kernel moves
// copyElems floats.
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

	be, err := FindBackend()
	if err != nil {
		return nil, err
	}
	return be.Compile([]byte(mod.m.String()), t)
}
