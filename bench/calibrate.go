package bench

import (
	"fmt"
	"path/filepath"

	"cnnc/codegen"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes/costmodel"
	"cnnc/runtime"
	"cnnc/runtime/cuda"
)

// Calibrate measures the card's ceilings and the GEMM core's efficiency
// and returns base with them: FP32 peak and DRAM bandwidth measured by the
// microbenchmarks (so streaming kernels reach them: memory efficiency 1),
// and the GEMM core's issue efficiency and shared-load
// cost solved from its efficiency on a ResNet-like convolution with the
// 4x4 and 8x8 register tiles.
func Calibrate(dev *cuda.Device, base costmodel.Profile, dir string) (costmodel.Profile, Ceilings, error) {
	sms, err := dev.Attribute(cuda.AttrMultiprocessorCount)
	if err != nil {
		return base, Ceilings{}, err
	}
	c, err := MeasureCeilings(dev, sms)
	if err != nil {
		return base, c, err
	}
	p := base
	p.SMs = sms
	// The launch interval measured here is the host's; kernels timed
	// with the queue filled ahead (runtime.TimeKernels) see the device's,
	// which `cnnc bench --fit` measures, so LaunchUs is left as it is.
	p.FP32TFLOPS, p.DRAMGBs, p.MemEff = c.FP32TFLOPS, c.DRAMGBs, 1
	p.Calibrated = true

	// A ResNet-like 3x3 convolution (256 to 256 channels at 28x28, batch
	// 32: M 256, N 25088, K 2304) on the 4x4 and the 8x8 register tile.
	var effs [2]float64
	tiles := [2]costmodel.Tile{costmodel.DefaultTile, {BM: 128, BN: 128, BK: 8, TM: 8, TN: 8}}
	for i, tile := range tiles {
		if effs[i], err = convEfficiency(dev, dir, tile, "fp32", p.FP32TFLOPS); err != nil {
			return p, c, err
		}
	}
	c.GemmEff4x4, c.GemmEff8x8 = effs[0], effs[1]
	p = p.SolveGemmIssue(tiles, effs, calibrationKSlices)
	// The tensor-core core (mma.sync) on the same convolution in fp16,
	// against mma.sync's measured peak: reported (the model counts the
	// core's staging apart; TensorCoreEff is its mma pipe alone, left to
	// --fit). The profile keeps both peaks: wgmma kernels run against the
	// card's.
	p.FP16TCTFLOPS, p.FP16MMASyncTFLOPS = c.FP16TCTFLOPS, c.FP16MMASyncTFLOPS
	if c.TensorCoreEff, err = convEfficiency(dev, dir, costmodel.TensorCoreTiles[0], "fp16", c.FP16MMASyncTFLOPS); err != nil {
		return p, c, err
	}
	return p, c, nil
}

// calibrationKSlices is the K steps of the calibration convolution (K 2304
// in slices of 8).
const calibrationKSlices = 2304 / 8

// convEfficiency compiles the calibration convolution with tile and
// returns its achieved fraction of the FP32 peak.
func convEfficiency(dev *cuda.Device, dir string, tile costmodel.Tile, precision string, peakTFLOPS float64) (float64, error) {
	g := ir.NewGraph("calibrate_conv")
	x := g.AddInput("x", ir.Type{DType: ir.F32, Shape: []int{32, 256, 28, 28}})
	w := interp.Random([]int{256, 256, 3, 3}, 7)
	wv := g.NewConst(ir.NewF32(w.Shape, w.Data), "w", "").Out
	node, err := g.NewNode(ir.OpConv2D, []*ir.Value{x, wv}, ir.Attrs{"pads": []int{1, 1, 1, 1}}, "")
	if err != nil {
		return 0, err
	}
	g.Outputs = []*ir.Value{node.Out}
	node.Sched = ir.Schedule{Tile: tile.Ints(), SplitK: 1}
	res, err := codegen.Compile(g, codegen.Options{Model: "calibrate_conv", Precision: precision})
	if err != nil {
		return 0, err
	}
	ptx := filepath.Join(dir, fmt.Sprintf("calibrate_%d_%s.ptx", tile.TM, precision))
	if err := res.Write(ptx, false); err != nil {
		return 0, err
	}
	ex, err := runtime.Load(dev, ptx)
	if err != nil {
		return 0, err
	}
	defer ex.Close()
	t, err := ex.TimeKernels(3, 20)
	if err != nil {
		return 0, err
	}
	eff := float64(res.Plan.FLOPs) / (t[0].Median * 1e-3) / (peakTFLOPS * 1e12)
	if eff <= 0 || eff > 1 {
		return 0, fmt.Errorf("calibration conv (%s, tile %v) reached %.3g of the peak", precision, tile, eff)
	}
	return eff, nil
}
