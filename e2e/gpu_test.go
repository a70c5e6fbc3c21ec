// Package e2e holds the end-to-end GPU checks: every conformance case that
// the interpreter supports is compiled, run on the GPU and compared with
// the interpreter. Without a GPU the tests skip; on the GPU machine they run
// as a compiled test binary (make gpu-bin).
package e2e

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cnnc/bench"
	"cnnc/codegen"
	"cnnc/internal/conformance"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes"
	"cnnc/passes/costmodel"
	"cnnc/runtime"
	"cnnc/runtime/cuda"
)

// GPU results must match the interpreter this closely (fp32 kernels
// against float64-accumulating reference).
const (
	gpuRtol = 1e-3
	gpuAtol = 1e-5
)

func openGPU(t *testing.T) *cuda.Device {
	t.Helper()
	dev, err := cuda.Open(0)
	if errors.Is(err, cuda.ErrNoDriver) {
		t.Skipf("no GPU: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

// compileAndRun compiles g at optLevel into dir, loads it on dev and runs
// it. The graph is changed in place by the passes.
func compileAndRun(dev *cuda.Device, g *ir.Graph, optLevel int, dir string, inputs []*interp.Tensor) ([]*interp.Tensor, error) {
	return compileAndRunAt(dev, g, optLevel, "fp32", dir, inputs)
}

// compileAndRunAt is compileAndRun at a precision (fp32 or fp16).
func compileAndRunAt(dev *cuda.Device, g *ir.Graph, optLevel int, precision, dir string, inputs []*interp.Tensor) ([]*interp.Tensor, error) {
	return compileAndRunLayout(dev, g, optLevel, precision, "", dir, inputs)
}

// compileAndRunLayout is compileAndRunAt with choose-layout's policy.
func compileAndRunLayout(dev *cuda.Device, g *ir.Graph, optLevel int, precision, layout, dir string, inputs []*interp.Tensor) ([]*interp.Tensor, error) {
	return compileAndRunTarget(dev, g, optLevel, precision, layout, "", dir, inputs)
}

// compileAndRunTarget is compileAndRunLayout for a codegen target.
func compileAndRunTarget(dev *cuda.Device, g *ir.Graph, optLevel int, precision, layout, target, dir string, inputs []*interp.Tensor) ([]*interp.Tensor, error) {
	prof, err := costmodel.Lookup("h100")
	if err != nil {
		return nil, err
	}
	res, _, err := codegen.Build(g, codegen.Options{Model: g.Name, OptLevel: optLevel, Precision: precision, Target: target},
		passes.Options{OptLevel: optLevel, Profile: prof, Verify: true, Layout: layout})
	if err != nil {
		return nil, err
	}
	ptx := filepath.Join(dir, "model.ptx")
	if err := res.Write(ptx, false); err != nil {
		return nil, err
	}
	ex, err := runtime.Load(dev, ptx)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	return bench.RunTensors(ex, inputs)
}

// TestGPUConformance: every supported conformance case, compiled at -O0,
// at -O2, and at -O2 with every activation that can be channels last
// stored so (the kernels choose-layout may pick), runs on the GPU and
// matches the interpreter.
func TestGPUConformance(t *testing.T) {
	dev := openGPU(t)
	cases, err := conformance.Cases(conformance.Dir(1))
	if err != nil {
		t.Fatal(err)
	}
	var passed, failed, hostOnly int
	for _, c := range cases {
		if _, unsup := conformance.ExpectedUnsupported[c.Name]; unsup {
			continue
		}
		ok := t.Run(c.Name, func(t *testing.T) {
			for _, v := range []struct {
				lvl    int
				layout string
			}{{0, ""}, {2, ""}, {2, ir.LayoutNHWC}} {
				lvl := v.lvl
				l, err := conformance.Load(c)
				if err != nil {
					t.Fatal(err)
				}
				want, err := interp.Run(l.Graph, l.Inputs)
				if err != nil {
					t.Fatal(err)
				}
				got, err := compileAndRunLayout(dev, l.Graph, lvl, "fp32", v.layout, t.TempDir(), l.Inputs)
				if errors.Is(err, codegen.ErrUnsupported) && allConstOutputs(l.Graph) {
					// Outputs folded to integer constants at import (Shape)
					// never reach the GPU.
					hostOnly++
					t.Skipf("outputs are compile-time constants: %v", err)
				}
				if err != nil {
					t.Fatalf("-O%d %s: %v", lvl, v.layout, err)
				}
				for k := range got {
					if err := interp.Compare(got[k], want[k], gpuRtol, gpuAtol); err != nil {
						t.Errorf("-O%d %s output %d: %v", lvl, v.layout, k, err)
					}
				}
			}
		})
		switch {
		case !ok:
			failed++
		default:
			passed++
		}
	}
	passed -= hostOnly
	fmt.Printf("gpu conformance: %d passed, %d failed, %d host-only\n", passed, failed, hostOnly)
}

func allConstOutputs(g *ir.Graph) bool {
	for _, v := range g.Outputs {
		if v.Def == nil || v.Def.Op != ir.OpConst {
			return false
		}
	}
	return true
}

// scheduleCases are GEMM-core nodes run under every tile and K split.
var scheduleCases = []string{
	`graph conv(%x: f32[2,24,13,11]) -> (%2) {
  %w = const f32[40,24,3,3] @w
  %b = const f32[40] @b
  %1 = conv2d %x, %w, %b {pads=[1,0,1,2], strides=[2,1]} : f32[2,40,7,11] [k1]
  %2 = relu %1 : f32[2,40,7,11] [k1]
}`,
	`graph grouped(%x: f32[1,32,9,9]) -> (%1) {
  %w = const f32[48,16,3,3] @w
  %1 = conv2d %x, %w {group=2, dilations=[2,2], pads=[2,2,2,2]} : f32[1,48,9,9]
}`,
	`graph fc(%x: f32[3,70]) -> (%2) {
  %w = const f32[50,70] @w
  %b = const f32[50] @b
  %1 = gemm %x, %w, %b {trans_b=1, alpha=0.5} : f32[3,50] [k1]
  %2 = sigmoid %1 : f32[3,50] [k1]
}`,
	`graph bmm(%a: f32[2,3,20,33], %b: f32[3,33,17]) -> (%1) {
  %1 = matmul %a, %b : f32[2,3,20,17]
}`,
	`graph dwpw(%x: f32[1,40,10,10]) -> (%4) {
  %wd = const f32[40,1,3,3] @wd
  %1 = conv2d %x, %wd {group=40, pads=[1,1,1,1]} : f32[1,40,10,10] [k1]
  %2 = clip %1 {max=6, min=0} : f32[1,40,10,10] [k1]
  %wp = const f32[24,40,1,1] @wp
  %3 = conv2d %2, %wp : f32[1,24,10,10] [k1]
  %4 = hard_swish %3 : f32[1,24,10,10] [k1]
}`,
	// Channels last (choose-layout's kernels): a dense conv turned
	// around for an NHWC output from an NCHW input, then from an NHWC
	// input (K runs channels first) with a residual add from the same
	// group, then a conv gathering NHWC into an NCHW output.
	`graph clchain(%x: f32[2,12,9,9]) -> (%6) {
  %w1 = const f32[20,12,3,3] @w1
  %b1 = const f32[20] @b1
  %1 = conv2d %x, %w1, %b1 {pads=[1,1,1,1]} : f32[2,20,9,9] [k1 layout=nhwc]
  %2 = relu %1 : f32[2,20,9,9] [k1 layout=nhwc]
  %w2 = const f32[20,20,3,3] @w2
  %3 = conv2d %2, %w2 {pads=[1,1,1,1]} : f32[2,20,9,9] [k2 layout=nhwc]
  %4 = add %3, %2 : f32[2,20,9,9] [k2 layout=nhwc]
  %5 = relu %4 : f32[2,20,9,9] [k2 layout=nhwc]
  %w3 = const f32[16,20,1,1] @w3
  %6 = conv2d %5, %w3 {strides=[2,2]} : f32[2,16,5,5] [k3]
}`,
	// Channels last through an inverted residual: a 1x1 expansion, a
	// depthwise conv computed inside the 1x1 projection (whose output is
	// NHWC), a standalone element-wise pair, and a grouped conv that keeps
	// the NCHW GEMM on NHWC data.
	`graph clblock(%x: f32[2,8,7,7]) -> (%9) {
  %we = const f32[24,8,1,1] @we
  %1 = conv2d %x, %we : f32[2,24,7,7] [k1 layout=nhwc]
  %2 = clip %1 {max=6, min=0} : f32[2,24,7,7] [k1 layout=nhwc]
  %wd = const f32[24,1,3,3] @wd
  %3 = conv2d %2, %wd {group=24, pads=[1,1,1,1]} : f32[2,24,7,7] [k2 layout=nhwc]
  %4 = clip %3 {max=6, min=0} : f32[2,24,7,7] [k2 layout=nhwc]
  %wp = const f32[16,24,1,1] @wp
  %5 = conv2d %4, %wp : f32[2,16,7,7] [k2 layout=nhwc]
  %6 = sigmoid %5 : f32[2,16,7,7] [k3 layout=nhwc]
  %7 = mul %5, %6 : f32[2,16,7,7] [k3 layout=nhwc]
  %wg = const f32[16,8,3,3] @wg
  %8 = conv2d %7, %wg {group=2, pads=[1,1,1,1]} : f32[2,16,7,7] [k4 layout=nhwc]
  %wo = const f32[10,16,1,1] @wo
  %9 = conv2d %8, %wo : f32[2,10,7,7] [k5]
}`,
	// A channels-last input of 32 channels into a turned 3x3 conv: in
	// fp16 the tensor-core core stages it eight channels per 128-bit load.
	`graph clvec(%x: f32[2,16,6,6]) -> (%5) {
  %w1 = const f32[32,16,1,1] @w1
  %1 = conv2d %x, %w1 : f32[2,32,6,6] [k1 layout=nhwc]
  %2 = relu %1 : f32[2,32,6,6] [k1 layout=nhwc]
  %w2 = const f32[40,32,3,3] @w2
  %3 = conv2d %2, %w2 {pads=[1,1,1,1]} : f32[2,40,6,6] [k2 layout=nhwc]
  %4 = relu %3 : f32[2,40,6,6] [k2 layout=nhwc]
  %w3 = const f32[8,40,1,1] @w3
  %5 = conv2d %4, %w3 : f32[2,8,6,6] [k3]
}`,
	// Eight channels per 128-bit epilogue access in fp16: a per-channel
	// scale (squeeze-excite's) read by coordinates, then a residual read
	// at the output's offset, eight at a time.
	`graph clepi(%x: f32[2,16,5,6], %s: f32[2,24,1,1]) -> (%6) {
  %w1 = const f32[24,16,3,3] @w1
  %b1 = const f32[24] @b1
  %1 = conv2d %x, %w1, %b1 {pads=[1,1,1,1]} : f32[2,24,5,6] [k1 layout=nhwc]
  %2 = mul %1, %s : f32[2,24,5,6] [k1 layout=nhwc]
  %w2 = const f32[24,24,1,1] @w2
  %3 = conv2d %2, %w2 : f32[2,24,5,6] [k2 layout=nhwc]
  %4 = add %3, %2 : f32[2,24,5,6] [k2 layout=nhwc]
  %5 = relu %4 : f32[2,24,5,6] [k2 layout=nhwc]
  %w3 = const f32[8,24,1,1] @w3
  %6 = conv2d %5, %w3 : f32[2,8,5,6] [k3]
}`,
	// NCHW depthwise convolutions, a thread per run of a row's outputs:
	// runs of 8 over 19 and 10 columns (the last one partial), stride 2,
	// bias and epilogues.
	`graph dwrows(%x: f32[2,24,13,19]) -> (%2, %4) {
  %wd = const f32[24,1,3,3] @wd
  %bd = const f32[24] @bd
  %1 = conv2d %x, %wd, %bd {group=24, pads=[1,1,1,1]} : f32[2,24,13,19] [k1]
  %2 = clip %1 {max=6, min=0} : f32[2,24,13,19] [k1]
  %we = const f32[24,1,5,5] @we
  %3 = conv2d %x, %we {group=24, pads=[2,2,2,2], strides=[2,2]} : f32[2,24,7,10] [k2]
  %4 = swish %3 {alpha=1} : f32[2,24,7,10] [k2]
}`,
	// SiLU as canonicalize leaves it (swish) in the epilogues of a
	// channels-last tensor-core conv and of a depthwise conv, as in
	// EfficientNet's MBConv blocks.
	`graph clswish(%x: f32[2,16,9,10]) -> (%5) {
  %w1 = const f32[32,16,1,1] @w1
  %b1 = const f32[32] @b1
  %1 = conv2d %x, %w1, %b1 : f32[2,32,9,10] [k1 layout=nhwc]
  %2 = swish %1 {alpha=1} : f32[2,32,9,10] [k1 layout=nhwc]
  %wd = const f32[32,1,3,3] @wd
  %3 = conv2d %2, %wd {group=32, pads=[1,1,1,1]} : f32[2,32,9,10] [k2 layout=nhwc]
  %4 = swish %3 {alpha=1} : f32[2,32,9,10] [k2 layout=nhwc]
  %w3 = const f32[8,32,1,1] @w3
  %5 = conv2d %4, %w3 : f32[2,8,9,10] [k3]
}`,
	// A channels-last max pool between convolutions: in fp16 with
	// channels in eights it takes eight channels per thread.
	`graph clpool(%x: f32[2,8,9,9]) -> (%3) {
  %w1 = const f32[16,8,1,1] @w1
  %1 = conv2d %x, %w1 : f32[2,16,9,9] [k1 layout=nhwc]
  %2 = maxpool2d %1 {dilations=[1,1], kernel=[3,3], pads=[1,1,1,1], strides=[2,2]} : f32[2,16,5,5] [k2 layout=nhwc]
  %w3 = const f32[8,16,1,1] @w3
  %3 = conv2d %2, %w3 : f32[2,8,5,5] [k3]
}`,
	// Few input channels (a stem) into a channels-last output: in fp16 on
	// the tensor cores the input is first copied, zero-padded, to 4 or 8
	// channels per pixel and K runs window rows of 32, 16 and 64 halves.
	`graph stem7(%x: f32[2,3,23,21]) -> (%3) {
  %w = const f32[16,3,7,7] @w
  %b = const f32[16] @b
  %1 = conv2d %x, %w, %b {pads=[3,3,3,3], strides=[2,2]} : f32[2,16,12,11] [k1 layout=nhwc]
  %2 = relu %1 : f32[2,16,12,11] [k1 layout=nhwc]
  %w2 = const f32[8,16,1,1] @w2
  %3 = conv2d %2, %w2 : f32[2,8,12,11] [k2]
}`,
	`graph stem3(%x: f32[3,3,15,16]) -> (%3) {
  %w = const f32[24,3,3,3] @w
  %1 = conv2d %x, %w {pads=[1,0,1,1], strides=[2,2]} : f32[3,24,8,8] [k1 layout=nhwc]
  %2 = clip %1 {max=6, min=0} : f32[3,24,8,8] [k1 layout=nhwc]
  %w2 = const f32[8,24,1,1] @w2
  %3 = conv2d %2, %w2 : f32[3,8,8,8] [k2]
}`,
	`graph stem5(%x: f32[1,5,10,9]) -> (%2) {
  %w = const f32[16,5,5,5] @w
  %1 = conv2d %x, %w {dilations=[2,1], pads=[2,2,2,2]} : f32[1,16,6,9] [k1 layout=nhwc]
  %w2 = const f32[8,16,1,1] @w2
  %2 = conv2d %1, %w2 : f32[1,8,6,9] [k2]
}`,
	`graph gapfc(%x: f32[2,48,3,3]) -> (%3) {
  %1 = global_avgpool %x : f32[2,48,1,1] [k1]
  %2 = reshape %1 {shape=[2,48]} : f32[2,48] [k1]
  %w = const f32[10,48] @w
  %3 = gemm %2, %w {trans_b=1} : f32[2,10] [k1]
}`,
	// Global pooling of a channels-last value: 40 channels, 30 pixels.
	`graph clgap(%x: f32[2,8,5,6]) -> (%2, %3) {
  %w1 = const f32[40,8,1,1] @w1
  %1 = conv2d %x, %w1 : f32[2,40,5,6] [k1 layout=nhwc]
  %2 = global_avgpool %1 : f32[2,40,1,1] [k2]
  %3 = global_maxpool %1 : f32[2,40,1,1] [k3]
}`,
	// Global pooling of channels-last values of 720 pixels and 264
	// channels (not a multiple of 32) or 20 (not of 8).
	`graph clgapbig(%x: f32[2,8,24,30]) -> (%2, %3, %5) {
  %w1 = const f32[264,8,1,1] @w1
  %1 = conv2d %x, %w1 : f32[2,264,24,30] [k1 layout=nhwc]
  %2 = global_avgpool %1 : f32[2,264,1,1] [k2]
  %3 = global_maxpool %1 : f32[2,264,1,1] [k3]
  %w2 = const f32[20,8,1,1] @w2
  %4 = conv2d %x, %w2 : f32[2,20,24,30] [k4 layout=nhwc]
  %5 = global_avgpool %4 : f32[2,20,1,1] [k5]
}`,
	// fuse-shortcut-conv's kernel: a bottleneck's last 1x1 conv (K 64,
	// whole 64-deep slices) and its strided projection shortcut (K 32)
	// summed in one GEMM; the later of the two anchors it.
	`graph shortcut(%x: f32[2,24,11,10]) -> (%9) {
  %w0 = const f32[32,24,3,3] @w0
  %1 = conv2d %x, %w0 {pads=[1,1,1,1]} : f32[2,32,11,10] [k1 layout=nhwc]
  %2 = relu %1 : f32[2,32,11,10] [k1 layout=nhwc]
  %w1 = const f32[64,32,3,3] @w1
  %3 = conv2d %2, %w1 {pads=[1,1,1,1], strides=[2,2]} : f32[2,64,6,5] [k2 layout=nhwc]
  %4 = relu %3 : f32[2,64,6,5] [k2 layout=nhwc]
  %w2 = const f32[128,64,1,1] @w2
  %b2 = const f32[128] @b2
  %5 = conv2d %4, %w2, %b2 : f32[2,128,6,5] [k3 layout=nhwc]
  %wd = const f32[128,32,1,1] @wd
  %bd = const f32[128] @bd
  %6 = conv2d %2, %wd, %bd {strides=[2,2]} : f32[2,128,6,5] [k3 layout=nhwc]
  %7 = add %5, %6 : f32[2,128,6,5] [k3 layout=nhwc]
  %8 = relu %7 : f32[2,128,6,5] [k3 layout=nhwc]
  %w4 = const f32[16,128,1,1] @w4
  %9 = conv2d %8, %w4 : f32[2,16,6,5] [k4]
}`,
	// Channels in 64s, NHWC: on Hopper the bulk tensor copy engine stages
	// both operands of each wgmma GEMM (an im2col map of the input, a
	// tiled map of the weights). A 3x3, a strided 3x3 whose stride does
	// not divide its padded width, and a bottleneck's last 1x1 summed with
	// its strided 1x1 shortcut (a map on each side of K); 180 and 50
	// pixels, so blocks cross images and run past the last.
	`graph tma(%x: f32[2,8,9,10]) -> (%9) {
  %w0 = const f32[64,8,1,1] @w0
  %0 = conv2d %x, %w0 : f32[2,64,9,10] [k0 layout=nhwc]
  %w1 = const f32[64,64,3,3] @w1
  %b1 = const f32[64] @b1
  %1 = conv2d %0, %w1, %b1 {pads=[1,1,1,1]} : f32[2,64,9,10] [k1 layout=nhwc]
  %2 = relu %1 : f32[2,64,9,10] [k1 layout=nhwc]
  %w2 = const f32[64,64,3,3] @w2
  %3 = conv2d %2, %w2 {pads=[1,1,1,1], strides=[2,2]} : f32[2,64,5,5] [k2 layout=nhwc]
  %4 = relu %3 : f32[2,64,5,5] [k2 layout=nhwc]
  %w3 = const f32[128,64,1,1] @w3
  %5 = conv2d %4, %w3 : f32[2,128,5,5] [k3 layout=nhwc]
  %wd = const f32[128,64,1,1] @wd
  %6 = conv2d %2, %wd {strides=[2,2]} : f32[2,128,5,5] [k3 layout=nhwc]
  %7 = add %5, %6 : f32[2,128,5,5] [k3 layout=nhwc]
  %8 = relu %7 : f32[2,128,5,5] [k3 layout=nhwc]
  %w4 = const f32[16,128,1,1] @w4
  %9 = conv2d %8, %w4 : f32[2,16,5,5] [k4]
}`,
}

// compareScaled compares fp32 GPU output with the interpreter's, its
// absolute tolerance gpuAtol of the output's largest magnitude (at least
// 1): in a chain of GEMMs the values grow (the tma case's reach 4656),
// and an element that cancels to near zero carries the rounding of its
// terms, not of itself (-0.438 off by 7.8e-4 there, 1.7e-7 of the scale,
// when the seeds shifted with the cases before it).
func compareScaled(got, want *interp.Tensor) error {
	scale := 1.0
	for _, v := range want.Data {
		scale = max(scale, math.Abs(float64(v)))
	}
	return interp.Compare(got, want, gpuRtol, gpuAtol*scale)
}

// scheduled parses scheduleCases[ci] with random weights, puts its GEMM
// anchors on tile with a K split, and returns random inputs and the
// interpreter's outputs for them.
func scheduled(t *testing.T, ci int, tile costmodel.Tile, split int) (*ir.Graph, []*interp.Tensor, []*interp.Tensor) {
	t.Helper()
	return randomCase(t, scheduleCases[ci], uint64(10*ci), uint64(ci+1), func(n *ir.Node) {
		n.Sched.Tile, n.Sched.SplitK = tile.Ints(), split
	})
}

// randomCase parses src, gives const node i random data (seed
// constSeed+i+1), schedules each GEMM anchor with set, and returns random
// inputs (seed inputSeed) and the interpreter's outputs for them.
func randomCase(t *testing.T, src string, constSeed, inputSeed uint64, set func(n *ir.Node)) (*ir.Graph, []*interp.Tensor, []*interp.Tensor) {
	t.Helper()
	g, err := ir.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range g.Nodes {
		if n.Op == ir.OpConst {
			r := interp.Random(n.Out.Type.Shape, constSeed+uint64(i)+1)
			n.Const = ir.NewF32(r.Shape, r.Data)
		}
		if costmodel.IsGemmAnchor(n) {
			set(n)
		}
	}
	inputs := interp.RandomInputs(g, inputSeed)
	want, err := interp.Run(g, inputs)
	if err != nil {
		t.Fatal(err)
	}
	return g, inputs, want
}

// TestGPUSchedules runs GEMM-core kernels (plain and with prologues and
// epilogues) under every tile candidate and K split on the GPU and
// compares them with the interpreter: a schedule may change speed, never
// the result.
func TestGPUSchedules(t *testing.T) {
	dev := openGPU(t)
	for ci := range scheduleCases {
		t.Run(caseName(ci), func(t *testing.T) {
			for _, tile := range costmodel.TileCandidates {
				for _, split := range []int{1, 3} {
					g, inputs, want := scheduled(t, ci, tile, split)
					got, err := compileAndRun(dev, g, 0, t.TempDir(), inputs)
					if err != nil {
						t.Fatalf("%s with %v split %d: %v", g.Name, tile, split, err)
					}
					for k := range got {
						if err := compareScaled(got[k], want[k]); err != nil {
							t.Errorf("%s with tile %v split_k %d: %v", g.Name, tile, split, err)
						}
					}
				}
			}
		})
	}
}

// TestGPUTensorCore runs the same kernels in fp16 on every tensor-core tile
// (and on the SIMT core with fp16 storage); fp16 rounds every tensor, so
// the outputs must match the fp32 interpreter to a relative L2 error of
// 1e-2.
func TestGPUTensorCore(t *testing.T) {
	dev := openGPU(t)
	tiles := append([]costmodel.Tile{costmodel.DefaultTile}, costmodel.TensorCoreTiles...)
	for ci := range scheduleCases {
		t.Run(caseName(ci), func(t *testing.T) {
			for _, tile := range tiles {
				for _, split := range []int{1, 2} {
					g, inputs, want := scheduled(t, ci, tile, split)
					got, err := compileAndRunAt(dev, g, 0, "fp16", t.TempDir(), inputs)
					if err != nil {
						t.Fatalf("%s with %v split %d: %v", g.Name, tile, split, err)
					}
					for k := range got {
						if e := interp.RelL2(got[k], want[k]); !(e <= 1e-2) {
							t.Errorf("%s with tile %v split_k %d: relative L2 error %.3g", g.Name, tile, split, e)
						}
					}
				}
			}
		})
	}
}

// caseName is scheduleCases[ci]'s graph name (a subtest's name, so that
// -run can pick cases).
func caseName(ci int) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(scheduleCases[ci], "graph "), "(")
	return name
}

// TestGPUWgmma runs the schedule cases on the tensor-core tiles of one
// warpgroup per 64 rows compiled for sm_90a, where they run on wgmma (K
// split too, its partial sums added through a workspace or across a
// thread-block cluster), on a Hopper card (skipped elsewhere), against
// the fp32 interpreter as TestGPUTensorCore does.
func TestGPUWgmma(t *testing.T) {
	dev := openGPU(t)
	card, err := bench.DeviceTarget(dev)
	if err != nil {
		t.Fatal(err)
	}
	if !codegen.Targets[card].Hopper {
		t.Skipf("the card's target is %s: no wgmma", card)
	}
	target := "sm_90a"
	n := 0
	for ci := range scheduleCases {
		t.Run(caseName(ci), func(t *testing.T) {
			for _, tile := range costmodel.TensorCoreTiles {
				if !tile.WarpgroupTile() {
					continue
				}
				// K unsplit, split in two through a workspace, and split in two
				// and three across a cluster.
				for _, s := range []struct {
					split  int
					reduce string
				}{{1, ""}, {2, ""}, {2, ir.ReduceCluster}, {3, ir.ReduceCluster}} {
					g, inputs, want := scheduled(t, ci, tile, s.split)
					for _, n := range g.Nodes {
						if costmodel.IsGemmAnchor(n) {
							n.Sched.Reduce = s.reduce
						}
					}
					got, err := compileAndRunTarget(dev, g, 0, "fp16", "", target, t.TempDir(), inputs)
					if err != nil {
						t.Fatalf("%s with %v split %d %s: %v", g.Name, tile, s.split, s.reduce, err)
					}
					for k := range got {
						if e := interp.RelL2(got[k], want[k]); !(e <= 1e-2) {
							t.Errorf("%s with tile %v split_k %d %s on wgmma: relative L2 error %.3g", g.Name, tile, s.split, s.reduce, e)
						}
					}
					n++
				}
			}
		})
	}
	if n == 0 {
		t.Error("no tensor-core tile runs on wgmma")
	}
}

// TestCompileSchedules compiles every schedule case under every SIMT tile
// (fp32) and tensor-core tile (fp16) with and without a K split, on the
// CPU: what the GPU tests run must at least verify and pass llc.
func TestCompileSchedules(t *testing.T) {
	if os.Getenv("CNNC_SKIP_LLC") == "1" {
		t.Skip("CNNC_SKIP_LLC=1")
	}
	tiles := append(append([]costmodel.Tile{}, costmodel.TileCandidates...), costmodel.TensorCoreTiles...)
	for ci := range scheduleCases {
		for _, tile := range tiles {
			for _, split := range []int{1, 3} {
				g, _, _ := scheduled(t, ci, tile, split)
				precision := "fp32"
				if tile.TensorCore() {
					precision = "fp16"
				}
				if _, err := codegen.Compile(g, codegen.Options{Model: g.Name, Precision: precision}); err != nil {
					t.Errorf("%s with tile %v split_k %d: %v", g.Name, tile, split, err)
				}
				if tile.WarpgroupTile() {
					// The wgmma core, which only Hopper runs (TestGPUWgmma),
					// its split adding up across a cluster.
					for _, n := range g.Nodes {
						if costmodel.IsGemmAnchor(n) {
							n.Sched.Reduce = ""
							if costmodel.ClusterReduce(tile, split, true) {
								n.Sched.Reduce = ir.ReduceCluster
							}
						}
					}
					res, err := codegen.Compile(g, codegen.Options{Model: g.Name, Precision: precision, Target: "sm_90a"})
					if err != nil {
						t.Errorf("%s with tile %v split_k %d for sm_90a: %v", g.Name, tile, split, err)
						continue
					}
					// k1-k3 of the tma case (two maps each, four for the
					// fused shortcut) stage on the copy engine.
					if n := res.Plan.TensorMaps(); g.Name == "tma" && n != 8 {
						t.Errorf("%s with tile %v split_k %d for sm_90a: %d tensor maps, want 8", g.Name, tile, split, n)
					}
				}
			}
		}
	}
}

// persistentCases are wgmma GEMMs of more tiles than an H100 or H200
// holds blocks, pre-scheduled channels last: on a persistent core each
// block runs several tiles, staging the next tile's first slices during
// the last one's epilogue.
var persistentCases = []string{
	// ResNet-50's layer2 projection tail at batch 32, narrower: a 1x1
	// conv (K 64) summed with a strided 1x1 shortcut (K 128), both
	// operands of each on the copy engine (four tensor maps), with their
	// biases, add and relu in the epilogue; 25088 pixels by 512 channels.
	`graph persisttma(%x: f32[32,16,28,28], %y: f32[32,16,56,56]) -> (%8) {
  %w0 = const f32[64,16,1,1] @w0
  %0 = conv2d %x, %w0 : f32[32,64,28,28] [k0 layout=nhwc]
  %ws = const f32[128,16,1,1] @ws
  %1 = conv2d %y, %ws : f32[32,128,56,56] [k1 layout=nhwc]
  %w2 = const f32[512,64,1,1] @w2
  %b2 = const f32[512] @b2
  %2 = conv2d %0, %w2, %b2 : f32[32,512,28,28] [k2 layout=nhwc]
  %wd = const f32[512,128,1,1] @wd
  %bd = const f32[512] @bd
  %3 = conv2d %1, %wd, %bd {strides=[2,2]} : f32[32,512,28,28] [k2 layout=nhwc]
  %4 = add %2, %3 : f32[32,512,28,28] [k2 layout=nhwc]
  %5 = relu %4 : f32[32,512,28,28] [k2 layout=nhwc]
  %w3 = const f32[16,512,1,1] @w3
  %8 = conv2d %5, %w3 : f32[32,16,28,28] [k3]
}`,
	// A padded 3x3 of 40 channels (no tensor maps: cp.async staging, K
	// 360 ending in a partial slice), bias and relu, 25088 pixels by 256
	// channels.
	`graph persistcp(%x: f32[32,8,28,28]) -> (%3) {
  %w0 = const f32[40,8,1,1] @w0
  %0 = conv2d %x, %w0 : f32[32,40,28,28] [k0 layout=nhwc]
  %w1 = const f32[256,40,3,3] @w1
  %b1 = const f32[256] @b1
  %1 = conv2d %0, %w1, %b1 {pads=[1,1,1,1]} : f32[32,256,28,28] [k1 layout=nhwc]
  %2 = relu %1 : f32[32,256,28,28] [k1 layout=nhwc]
  %w2 = const f32[16,256,1,1] @w2
  %3 = conv2d %2, %w2 : f32[32,16,28,28] [k2]
}`,
}

// persistent parses persistentCases[ci] with random weights, puts its
// GEMM anchors on tile, persistent, and returns random inputs and the
// interpreter's outputs for them.
func persistent(t *testing.T, ci int, tile costmodel.Tile) (*ir.Graph, []*interp.Tensor, []*interp.Tensor) {
	t.Helper()
	return randomCase(t, persistentCases[ci], uint64(100*ci), uint64(ci+7), func(n *ir.Node) {
		n.Sched.Tile, n.Sched.SplitK, n.Sched.Persist = tile.Ints(), 1, 2
	})
}

// persistentTiles are the warpgroup tiles the persistent core takes: BM
// at most two slices deep (the parked output fits two stages of B).
func persistentTiles() []costmodel.Tile {
	var out []costmodel.Tile
	for _, tile := range costmodel.TensorCoreTiles {
		if tile.WarpgroupTile() && tile.BM <= 2*tile.BK {
			out = append(out, tile)
		}
	}
	return out
}

// TestCompilePersistent compiles the persistent cases for sm_90a on the
// CPU under every tile the persistent core takes: their big GEMMs become
// persistent launches (the fused shortcut on four tensor maps), and llc
// takes them.
func TestCompilePersistent(t *testing.T) {
	if os.Getenv("CNNC_SKIP_LLC") == "1" {
		t.Skip("CNNC_SKIP_LLC=1")
	}
	for ci := range persistentCases {
		for _, tile := range persistentTiles() {
			g, err := ir.Parse(persistentCases[ci])
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range g.Nodes {
				if n.Op == ir.OpConst {
					n.Const = ir.NewF32(n.Out.Type.Shape, make([]float32, n.Out.Type.Elems()))
				}
				if costmodel.IsGemmAnchor(n) {
					n.Sched.Tile, n.Sched.SplitK, n.Sched.Persist = tile.Ints(), 1, 2
				}
			}
			res, err := codegen.Compile(g, codegen.Options{Model: g.Name, Precision: "fp16", Target: "sm_90a"})
			if err != nil {
				t.Fatalf("%s with tile %v: %v", g.Name, tile, err)
			}
			// The convs of the NCHW inputs (no 128-bit staging: not on
			// wgmma) and the last one, writing NCHW (no 128-bit
			// epilogue), do not persist: one GEMM of each case does.
			var persist []string
			for _, l := range res.Plan.Launches {
				if l.PersistTiles > 0 {
					persist = append(persist, l.Kernel)
					if l.Grid[0] >= l.PersistTiles {
						t.Errorf("%s with tile %v: %s launches %d blocks for %d tiles", g.Name, tile, l.Kernel, l.Grid[0], l.PersistTiles)
					}
				}
			}
			if len(persist) != 1 {
				t.Errorf("%s with tile %v: persistent launches %v, want one", g.Name, tile, persist)
			}
			for _, l := range res.Plan.Launches {
				if l.PersistTiles > 0 && (l.OneTile == nil || l.OneTile.Grid[0]*l.OneTile.Grid[1] != l.PersistTiles ||
					!strings.Contains(string(res.PTX), ".entry "+l.OneTile.Kernel+"(")) {
					t.Errorf("%s with tile %v: %s's one-tile kernel %+v is not one block per tile in the PTX", g.Name, tile, l.Kernel, l.OneTile)
				}
			}
			if n := res.Plan.TensorMaps(); g.Name == "persisttma" && n != 4 {
				t.Errorf("%s with tile %v: %d tensor maps, want 4 (the fused shortcut's)", g.Name, tile, n)
			}
			// Both kernels of a launch take its maps by value.
			for _, l := range res.Plan.Launches {
				if l.OneTile == nil {
					continue
				}
				for _, kernel := range []string{l.Kernel, l.OneTile.Kernel} {
					byValue := strings.Count(string(res.PTX), ".param .align 64 .b8 "+kernel+"_param_")
					if want := map[string]int{"persisttma": 4}[g.Name]; byValue != want {
						t.Errorf("%s with tile %v: %s takes %d tensor maps by value, want %d", g.Name, tile, kernel, byValue, want)
					}
				}
			}
		}
	}
}

// TestGPUPersistent runs the persistent cases on a Hopper card (skipped
// elsewhere) under every tile the persistent core takes, against the
// fp32 interpreter as TestGPUWgmma does: blocks running several tiles,
// the copies of one overlapping the epilogue of the last, change nothing.
func TestGPUPersistent(t *testing.T) {
	dev := openGPU(t)
	card, err := bench.DeviceTarget(dev)
	if err != nil {
		t.Fatal(err)
	}
	if !codegen.Targets[card].Hopper {
		t.Skipf("the card's target is %s: no wgmma", card)
	}
	for ci := range persistentCases {
		name, _, _ := strings.Cut(strings.TrimPrefix(persistentCases[ci], "graph "), "(")
		t.Run(name, func(t *testing.T) {
			for _, tile := range persistentTiles() {
				g, inputs, want := persistent(t, ci, tile)
				// As the runtime chooses (persistent, or its one-tile
				// kernel), and persistent whatever it would choose.
				for _, force := range []bool{false, true} {
					got, err := compileAndRunPersistent(dev, g, t.TempDir(), inputs, force)
					if err != nil {
						t.Fatalf("%s with tile %v (forced %v): %v", g.Name, tile, force, err)
					}
					for k := range got {
						if e := interp.RelL2(got[k], want[k]); !(e <= 1e-2) {
							t.Errorf("%s with tile %v, persistent (forced %v): relative L2 error %.3g", g.Name, tile, force, e)
						}
					}
				}
			}
		})
	}
}

// compileAndRunPersistent compiles pre-scheduled g for sm_90a in fp16
// and runs it; with force, every persistent launch runs its persistent
// kernel (its one-tile kernel dropped from the plan).
func compileAndRunPersistent(dev *cuda.Device, g *ir.Graph, dir string, inputs []*interp.Tensor, force bool) ([]*interp.Tensor, error) {
	prof, err := costmodel.Lookup("h100")
	if err != nil {
		return nil, err
	}
	res, _, err := codegen.Build(g, codegen.Options{Model: g.Name, Precision: "fp16", Target: "sm_90a"},
		passes.Options{Profile: prof, Verify: true})
	if err != nil {
		return nil, err
	}
	ptx := filepath.Join(dir, "model.ptx")
	if err := res.Write(ptx, false); err != nil {
		return nil, err
	}
	a, err := runtime.ReadArtifact(ptx)
	if err != nil {
		return nil, err
	}
	persistent := 0
	for i := range a.Plan.Launches {
		if a.Plan.Launches[i].PersistTiles > 0 {
			persistent++
			if force {
				a.Plan.Launches[i].OneTile = nil
			}
		}
	}
	if persistent == 0 {
		return nil, errors.New("no persistent launch")
	}
	ex, err := runtime.LoadArtifact(dev, a)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	return bench.RunTensors(ex, inputs)
}
