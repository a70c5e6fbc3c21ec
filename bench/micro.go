// Package bench measures compiled models on the GPU: before (-O0) and
// after (-O2) per kernel and end to end, against the card's ceilings
// measured in the same run, and writes Markdown and JSON reports.
package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"cnnc/codegen"
	"cnnc/passes/costmodel"
	"cnnc/runtime/cuda"
)

// Ceilings are the card's rates measured by microbenchmarks.
type Ceilings struct {
	FP32TFLOPS float64 `json:"fp32_tflops"` // FMA chains in registers
	// FP16TCTFLOPS is the fp16 tensor-core peak (f32 accumulation): the
	// faster of FP16MMASyncTFLOPS and FP16WgmmaTFLOPS.
	FP16TCTFLOPS float64 `json:"fp16_tensor_tflops"`
	// FP16MMASyncTFLOPS is the rate of mma.m16n8k16 chains in registers.
	FP16MMASyncTFLOPS float64 `json:"fp16_mma_sync_tflops,omitempty"`
	// FP16WgmmaTFLOPS (Hopper) is the rate of wgmma.m64n256k16 on
	// operands in shared memory.
	FP16WgmmaTFLOPS float64 `json:"fp16_wgmma_tflops,omitempty"`
	DRAMGBs         float64 `json:"dram_gbs"`  // read + write of a 1 GiB copy
	LaunchUs        float64 `json:"launch_us"` // per empty kernel, back to back
	// The GEMM core's fraction of the FP32 peak on the calibration
	// convolution with the 4x4 and 8x8 register tiles (--calibrate only).
	GemmEff4x4 float64 `json:"gemm_efficiency_4x4,omitempty"`
	GemmEff8x8 float64 `json:"gemm_efficiency_8x8,omitempty"`
	// TensorCoreEff is the mma.sync core's fraction of mma.sync's peak
	// on it (--calibrate only).
	TensorCoreEff float64 `json:"tensor_core_efficiency,omitempty"`
}

// copyElems is the copy microbenchmark's size: 256 Mi floats, 1 GiB.
const copyElems = 1 << 28

// timeLaunches times iters back-to-back calls of launch between two
// events (after warm-up) and returns milliseconds per call, the median of
// five such runs.
func timeLaunches(dev *cuda.Device, iters int, launch func(b *cuda.Batch, s cuda.Stream) error) (float64, error) {
	var runs []float64
	s, err := dev.CreateStream()
	if err != nil {
		return 0, err
	}
	defer dev.DestroyStream(s)
	start, err := dev.CreateEvent()
	if err != nil {
		return 0, err
	}
	defer dev.DestroyEvent(start)
	end, err := dev.CreateEvent()
	if err != nil {
		return 0, err
	}
	defer dev.DestroyEvent(end)
	for r := 0; r < 6; r++ {
		var ms float64
		err := dev.Batch(func(b *cuda.Batch) error {
			if err := b.RecordEvent(start, s); err != nil {
				return err
			}
			for range iters {
				if err := launch(b, s); err != nil {
					return err
				}
			}
			if err := b.RecordEvent(end, s); err != nil {
				return err
			}
			if err := b.SyncEvent(end); err != nil {
				return err
			}
			var err error
			ms, err = b.EventElapsed(start, end)
			return err
		})
		if err != nil {
			return 0, err
		}
		if r > 0 { // the first run warms up
			runs = append(runs, ms/float64(iters))
		}
	}
	slices.Sort(runs)
	return runs[len(runs)/2], nil
}

// MeasureCeilings runs the microbenchmarks on dev.
func MeasureCeilings(dev *cuda.Device, sms int) (Ceilings, error) {
	name := codegen.DefaultTarget
	if major, minor, err := dev.ComputeCapability(); err == nil {
		name = codegen.TargetFor(major, minor)
	}
	t, err := codegen.LookupTarget(name)
	if err != nil {
		return Ceilings{}, err
	}
	ptx, err := codegen.MicroPTX(t, copyElems)
	if err != nil {
		return Ceilings{}, err
	}
	mod, err := dev.LoadModule(ptx)
	if err != nil {
		return Ceilings{}, err
	}
	defer mod.Unload()
	fn := func(name string) (cuda.Function, error) { return mod.Function(name) }
	peak, err1 := fn(codegen.PeakKernel)
	cp, err2 := fn(codegen.CopyKernel)
	empty, err3 := fn(codegen.EmptyKernel)
	mma, err4 := fn(codegen.MMAPeakKernel)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Ceilings{}, err
	}
	var c Ceilings

	// FMA peak: enough blocks for several waves of 8 per SM.
	blocks := sms * 8 * 4
	out, err := dev.Alloc(int64(blocks * codegen.PeakThreads * 4))
	if err != nil {
		return c, err
	}
	defer dev.Free(out)
	pp := cuda.PointerParams(out)
	ms, err := timeLaunches(dev, 5, func(b *cuda.Batch, s cuda.Stream) error {
		return b.Launch(peak, cuda.Dim3{X: blocks, Y: 1, Z: 1}, cuda.Dim3{X: codegen.PeakThreads, Y: 1, Z: 1}, 0, s, pp)
	})
	if err != nil {
		return c, fmt.Errorf("FMA peak: %w", err)
	}
	flops := 2 * float64(codegen.PeakFMAs) * float64(blocks*codegen.PeakThreads)
	c.FP32TFLOPS = flops / (ms * 1e-3) / 1e12

	// Tensor-core peak: the same grid of 8-warp blocks.
	ms, err = timeLaunches(dev, 5, func(b *cuda.Batch, s cuda.Stream) error {
		return b.Launch(mma, cuda.Dim3{X: blocks, Y: 1, Z: 1}, cuda.Dim3{X: codegen.PeakThreads, Y: 1, Z: 1}, 0, s, pp)
	})
	if err != nil {
		return c, fmt.Errorf("tensor-core peak: %w", err)
	}
	c.FP16MMASyncTFLOPS = float64(codegen.MMAFLOPsPerWarp) * float64(blocks*codegen.PeakThreads/32) / (ms * 1e-3) / 1e12
	c.FP16TCTFLOPS = c.FP16MMASyncTFLOPS
	if t.Hopper {
		wgmma, err := fn(codegen.WgmmaPeakKernel)
		if err != nil {
			return c, err
		}
		ms, err = timeLaunches(dev, 5, func(b *cuda.Batch, s cuda.Stream) error {
			return b.Launch(wgmma, cuda.Dim3{X: blocks, Y: 1, Z: 1}, cuda.Dim3{X: codegen.PeakThreads, Y: 1, Z: 1}, 0, s, pp)
		})
		if err != nil {
			return c, fmt.Errorf("wgmma peak: %w", err)
		}
		c.FP16WgmmaTFLOPS = float64(codegen.WgmmaFLOPsPerWarpgroup) * float64(blocks*codegen.PeakThreads/128) / (ms * 1e-3) / 1e12
		c.FP16TCTFLOPS = max(c.FP16TCTFLOPS, c.FP16WgmmaTFLOPS)
	}

	// Bandwidth: copy 1 GiB (2 GiB moved).
	src, err := dev.Alloc(copyElems * 4)
	if err != nil {
		return c, err
	}
	defer dev.Free(src)
	dst, err := dev.Alloc(copyElems * 4)
	if err != nil {
		return c, err
	}
	defer dev.Free(dst)
	if err := dev.Memset(src, 0x3f, copyElems*4); err != nil {
		return c, err
	}
	cpp := cuda.PointerParams(src, dst)
	ms, err = timeLaunches(dev, 5, func(b *cuda.Batch, s cuda.Stream) error {
		return b.Launch(cp, cuda.Dim3{X: copyElems / 256, Y: 1, Z: 1}, cuda.Dim3{X: 256, Y: 1, Z: 1}, 0, s, cpp)
	})
	if err != nil {
		return c, fmt.Errorf("copy bandwidth: %w", err)
	}
	c.DRAMGBs = 2 * copyElems * 4 / (ms * 1e-3) / 1e9

	// Launch overhead: empty kernels back to back.
	ep := cuda.NewParams(0)
	ms, err = timeLaunches(dev, 2000, func(b *cuda.Batch, s cuda.Stream) error {
		return b.Launch(empty, cuda.Dim3{X: 1, Y: 1, Z: 1}, cuda.Dim3{X: 32, Y: 1, Z: 1}, 0, s, ep)
	})
	if err != nil {
		return c, fmt.Errorf("launch overhead: %w", err)
	}
	c.LaunchUs = ms * 1e3
	return c, nil
}

// ProfileFor picks the built-in profile of a card by its name.
func ProfileFor(card string) (costmodel.Profile, error) {
	for _, n := range []string{"H200", "H100", "A100"} {
		if strings.Contains(strings.ToUpper(card), n) {
			return costmodel.Lookup(n)
		}
	}
	return costmodel.Profile{}, fmt.Errorf("no built-in profile for %q; pass --profile or --calibration", card)
}
