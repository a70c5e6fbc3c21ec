package codegen

import (
	"github.com/llir/llvm/ir/value"
)

// Microbenchmark kernels measure the card's ceilings in the same run as a
// benchmark: the FP32 FMA rate, DRAM bandwidth and launch overhead.
const (
	// PeakKernel does PeakFMAs fused multiply-adds per thread in
	// independent chains and writes one float per thread to p0.
	PeakKernel = "micro_fma_peak"
	// CopyKernel copies p0[i] to p1[i] for i < the element count baked in.
	CopyKernel = "micro_stream_copy"
	// EmptyKernel does nothing: back-to-back launches measure overhead.
	EmptyKernel = "micro_empty"

	PeakChains  = 8
	PeakIters   = 4096
	PeakThreads = 256
	// PeakFMAs per thread.
	PeakFMAs = PeakChains * PeakIters * 8
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

	be, err := FindBackend()
	if err != nil {
		return nil, err
	}
	return be.Compile([]byte(mod.m.String()), t)
}
