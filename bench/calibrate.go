package bench

import (
	"fmt"
	"path/filepath"

	"cnnc/artifact"
	"cnnc/codegen"
	"cnnc/internal/tensorfile"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes/costmodel"
	"cnnc/runtime"
	"cnnc/runtime/cuda"
)

// Calibrate measures the card's ceilings and the GEMM core's efficiency
// and returns base with them: FP32 peak and DRAM bandwidth measured by the
// microbenchmarks (so streaming kernels reach them: memory efficiency 1),
// the GEMM efficiency of a 2048x2048x4096 GEMM on the default tile, and
// the launch interval.
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
	p.FP32TFLOPS, p.DRAMGBs, p.LaunchUs, p.MemEff = c.FP32TFLOPS, c.DRAMGBs, c.LaunchUs, 1
	p.Calibrated = true

	const m, n, k = 2048, 2048, 4096
	g := ir.NewGraph("calibrate_gemm")
	x := g.AddInput("x", ir.Type{DType: ir.F32, Shape: []int{m, k}})
	w := interp.Random([]int{n, k}, 7)
	wv := g.NewConst(ir.NewF32(w.Shape, w.Data), "w", "").Out
	node, err := g.NewNode(ir.OpGemm, []*ir.Value{x, wv}, ir.Attrs{"trans_b": 1}, "")
	if err != nil {
		return p, c, err
	}
	g.Outputs = []*ir.Value{node.Out}
	node.Sched = ir.Schedule{Kernel: 0, Tile: costmodel.DefaultTile.Ints(), SplitK: 1}
	res, err := codegen.Compile(g, codegen.Options{Model: "calibrate_gemm"})
	if err != nil {
		return p, c, err
	}
	ptx := filepath.Join(dir, "calibrate.ptx")
	planPath, weightsPath := artifact.Paths(ptx)
	res.Plan.PTX, res.Plan.Weights.File = filepath.Base(ptx), filepath.Base(weightsPath)
	pj, err := res.Plan.Encode()
	if err != nil {
		return p, c, err
	}
	if err := tensorfile.WriteFilesAtomic([]string{ptx, planPath, weightsPath}, [][]byte{res.PTX, pj, res.Weights}); err != nil {
		return p, c, err
	}
	ex, err := runtime.Load(dev, ptx)
	if err != nil {
		return p, c, err
	}
	defer ex.Close()
	t, err := ex.TimeKernels(3, 20)
	if err != nil {
		return p, c, err
	}
	achieved := 2 * float64(m) * n * k / (t[0].Median * 1e-3)
	p.GemmEff = achieved / (p.FP32TFLOPS * 1e12)
	if p.GemmEff <= 0 || p.GemmEff > 1 {
		return p, c, fmt.Errorf("calibration GEMM reached %.3g TFLOP/s against a peak of %.3g", achieved/1e12, p.FP32TFLOPS)
	}
	return p, c, nil
}
