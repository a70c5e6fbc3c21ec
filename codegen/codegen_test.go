package codegen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/llir/llvm/ir/value"

	"cnnc/artifact"
	"cnnc/frontend/onnx"
	"cnnc/frontend/onnx/onnxbuild"
	"cnnc/internal/golden"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes"
	"cnnc/passes/costmodel"
)

var update = flag.Bool("update", false, "rewrite the want.ll sections of testdata/*.txtar")

// backendForTest returns the NVPTX backend; tests fail without one unless
// CNNC_SKIP_LLC=1 (CI installs llvm-19).
func backendForTest(t *testing.T) Backend {
	t.Helper()
	b, err := FindBackend()
	if err != nil {
		if os.Getenv("CNNC_SKIP_LLC") == "1" {
			t.Skipf("CNNC_SKIP_LLC=1: %v", err)
		}
		t.Fatalf("%v (set CNNC_SKIP_LLC=1 to skip)", err)
	}
	return b
}

// fillConsts gives parsed consts without data deterministic random data.
func fillConsts(g *ir.Graph) {
	for i, n := range g.Nodes {
		if n.Op == ir.OpConst && n.Const == nil {
			r := interp.Random(n.Out.Type.Shape, uint64(i+1))
			n.Const = ir.NewF32(r.Shape, r.Data)
		}
	}
}

// TestGoldenLLVM lowers each testdata graph and compares the LLVM module
// with its golden (go test ./codegen -update rewrites them); every golden
// is also compiled by the NVPTX backend, one .entry per launch.
func TestGoldenLLVM(t *testing.T) {
	be := backendForTest(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if len(files) == 0 {
		t.Fatal("no golden files in testdata")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			input := golden.Input(t, file, "input.ir")
			g, err := ir.Parse(input)
			if err != nil {
				t.Fatal(err)
			}
			fillConsts(g)
			res, err := Lower(g, Options{Model: filepath.Base(file)})
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, file, "want.ll", res.LLVM, *update)
			ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
			if err != nil {
				t.Fatalf("the backend rejects the module: %v", err)
			}
			if got, want := bytes.Count(ptx, []byte(".entry ")), len(res.Plan.Launches); got != want {
				t.Errorf("PTX has %d entries, the plan %d launches", got, want)
			}
		})
	}
}

// entryBodies splits PTX into kernel name -> body.
func entryBodies(ptx string) map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`\.entry (\w+)\(`)
	locs := re.FindAllStringSubmatchIndex(ptx, -1)
	for i, l := range locs {
		end := len(ptx)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[ptx[l[2]:l[3]]] = ptx[l[0]:end]
	}
	return out
}

func compileExample(t *testing.T) *Result {
	t.Helper()
	g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compile(g, Options{Model: "tiny.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPTXProperties checks the compiled example: one kernel per launch,
// named kNNN_what, plan arguments inside their buffers, and no local
// memory (register spills) in the convolution kernels at the default tile.
func TestPTXProperties(t *testing.T) {
	backendForTest(t)
	res := compileExample(t)
	bodies := entryBodies(string(res.PTX))
	if len(bodies) != len(res.Plan.Launches) {
		t.Errorf("PTX has %d kernels, plan %d launches", len(bodies), len(res.Plan.Launches))
	}
	name := regexp.MustCompile(`^k\d{3}_[a-z0-9_]+$`)
	convs := 0
	for _, l := range res.Plan.Launches {
		body, ok := bodies[l.Kernel]
		if !ok {
			t.Errorf("launch %s has no kernel in the PTX", l.Kernel)
			continue
		}
		if !name.MatchString(l.Kernel) {
			t.Errorf("kernel name %q does not read kNNN_what", l.Kernel)
		}
		if strings.Contains(l.Kernel, "conv") {
			convs++
			if strings.Contains(body, ".local") {
				t.Errorf("%s uses local memory (spills)", l.Kernel)
			}
			if !strings.Contains(body, "fma.rn.f32") || !strings.Contains(body, "ld.shared") && !strings.Contains(l.Kernel, "dwconv") {
				t.Errorf("%s lacks the FMA/shared-memory core", l.Kernel)
			}
		}
	}
	if convs != 8 {
		t.Errorf("%d convolution kernels, want the example's 8", convs)
	}
	if err := res.Plan.Validate(); err != nil {
		t.Error(err)
	}
}

// TestDeterministic compiles the example twice and compares every output.
func TestDeterministic(t *testing.T) {
	backendForTest(t)
	a, b := compileExample(t), compileExample(t)
	pa, _ := a.Plan.Encode()
	pb, _ := b.Plan.Encode()
	for _, c := range []struct {
		what string
		x, y []byte
	}{{"LLVM", a.LLVM, b.LLVM}, {"PTX", a.PTX, b.PTX}, {"plan", pa, pb}, {"weights", a.Weights, b.Weights}} {
		if !bytes.Equal(c.x, c.y) {
			t.Errorf("%s differs between two compiles of the same model", c.what)
		}
	}
}

func TestLowerRejects(t *testing.T) {
	g, err := ir.Parse(`graph g(%x: f32[2]) -> (%s) {
  %s = const i64[2] [1, 2]
}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lower(g, Options{}); err == nil || !strings.Contains(err.Error(), "i64") {
		t.Errorf("Lower of an i64 output = %v, want an unsupported-dtype error", err)
	}
	if _, err := Lower(g, Options{Target: "sm_50"}); err == nil || !strings.Contains(err.Error(), "unknown target") {
		t.Errorf("Lower with sm_50 = %v, want unknown target", err)
	}
}

// fusedCases are fused and tiled kernels as the -O2 passes leave them.
var fusedCases = []struct {
	name, text string
	launches   int
}{
	{"conv+add+relu on the 8x8 tile", `graph g(%x: f32[2,64,14,14]) -> (%3) {
  %w = const f32[64,64,3,3] @w
  %b = const f32[64] @b
  %1 = conv2d %x, %w, %b {pads=[1,1,1,1]} : f32[2,64,14,14] [k1 tile=128,128,8,8,8]
  %2 = add %1, %x : f32[2,64,14,14] [k1]
  %3 = relu %2 : f32[2,64,14,14] [k1]
}`, 1},
	{"split-K conv with its epilogue in the reduction", `graph g(%x: f32[1,256,7,7]) -> (%2) {
  %w = const f32[256,256,3,3] @w
  %1 = conv2d %x, %w {pads=[1,1,1,1]} : f32[1,256,7,7] [k1 tile=32,32,8,2,2 split_k=8]
  %2 = clip %1 {max=6, min=0} : f32[1,256,7,7] [k1]
}`, 2},
	{"depthwise inside the 1x1 conv", `graph g(%x: f32[1,96,14,14]) -> (%4) {
  %wd = const f32[96,1,3,3] @wd
  %bd = const f32[96] @bd
  %1 = conv2d %x, %wd, %bd {group=96, pads=[1,1,1,1]} : f32[1,96,14,14] [k1]
  %2 = clip %1 {max=6, min=0} : f32[1,96,14,14] [k1]
  %wp = const f32[24,96,1,1] @wp
  %3 = conv2d %2, %wp : f32[1,24,14,14] [k1 tile=32,32,32,2,2]
  %r = const f32[1,24,14,14] @r
  %4 = add %3, %r : f32[1,24,14,14] [k1]
}`, 1},
	{"global average pool inside the classifier", `graph g(%x: f32[4,64,2,2]) -> (%3) {
  %1 = global_avgpool %x : f32[4,64,1,1] [k1]
  %2 = reshape %1 {shape=[4,64]} : f32[4,64] [k1]
  %w = const f32[10,64] @w
  %3 = gemm %2, %w {trans_b=1} : f32[4,10] [k1 tile=32,32,8,2,2]
}`, 1},
	{"squeeze-excite gate as an element-wise chain", `graph g(%x: f32[1,32,8,8], %s: f32[1,32,1,1]) -> (%3) {
  %1 = sigmoid %s : f32[1,32,1,1]
  %2 = mul %x, %1 : f32[1,32,8,8] [k1]
  %3 = hard_swish %2 : f32[1,32,8,8] [k1]
}`, 2},
}

// TestFusedKernels lowers fused and tiled kernels and checks what the
// backend makes of them: one entry per launch, split-K as a main kernel
// and a reduction, no local memory (spills) in any kernel.
func TestFusedKernels(t *testing.T) {
	be := backendForTest(t)
	for _, c := range fusedCases {
		t.Run(c.name, func(t *testing.T) {
			g, err := ir.Parse(c.text)
			if err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(g); err != nil {
				t.Fatal(err)
			}
			fillConsts(g)
			res, err := Lower(g, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Plan.Launches); got != c.launches {
				t.Errorf("%d launches, want %d", got, c.launches)
			}
			ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
			if err != nil {
				t.Fatal(err)
			}
			for name, body := range entryBodies(string(ptx)) {
				if strings.Contains(body, ".local") {
					t.Errorf("%s spills to local memory", name)
				}
			}
			if strings.Contains(c.name, "split-K") && !strings.Contains(res.Plan.Launches[1].Kernel, "splitk_reduce") {
				t.Errorf("second launch %s is not the split-K reduction", res.Plan.Launches[1].Kernel)
			}
			if err := res.Plan.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestWeightsRoundTrip: every constant a launch reads is in the weights
// file at the launch's offset, byte for byte.
func TestWeightsRoundTrip(t *testing.T) {
	g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Lower(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kernels := passes.Kernels(g)
	checked := 0
	for i, k := range kernels {
		for j, in := range k.Inputs {
			if in.Def == nil || in.Def.Op != ir.OpConst {
				continue
			}
			arg := res.Plan.Launches[i].Args[j]
			if arg.Buffer != artifact.BufWeights || arg.Offset%artifact.Alignment != 0 {
				t.Fatalf("launch %d arg %d of const %s: %+v, want an aligned weights offset", i, j, in, arg)
			}
			want := in.Def.Const.Raw
			if got := res.Weights[arg.Offset : arg.Offset+int64(len(want))]; !bytes.Equal(got, want) {
				t.Errorf("const %s differs in the weights file at %d", in, arg.Offset)
			}
			checked++
		}
	}
	if checked < 8 {
		t.Errorf("checked %d constants, want the example's weights", checked)
	}
}

func TestMissingBackend(t *testing.T) {
	t.Setenv("CNNC_LLC", filepath.Join(t.TempDir(), "no-such-llc"))
	_, err := findBackend()
	if err == nil || !strings.Contains(err.Error(), "$CNNC_LLC") || strings.Contains(err.Error(), "\n") {
		t.Errorf("findBackend with a missing $CNNC_LLC = %v, want one line naming it", err)
	}
}

// TestFP16Storage compiles the example with half storage: every global
// load widens and every store narrows, arithmetic stays float, and the
// plan says so.
func TestFP16Storage(t *testing.T) {
	be := backendForTest(t)
	g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Lower(g, Options{Precision: "fp16"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.Precision != "fp16" || res.Plan.Inputs[0].DType != "f16" || res.Plan.Inputs[0].Bytes != 3*32*32*2 {
		t.Errorf("plan precision %s, input %+v; want fp16 and 2-byte elements", res.Plan.Precision, res.Plan.Inputs[0])
	}
	// Each launch's minimum traffic is half the fp32 plan's.
	g32, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res32, err := Lower(g32, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res32.Plan.Launches) != len(res.Plan.Launches) {
		t.Fatalf("%d launches in fp32, %d in fp16", len(res32.Plan.Launches), len(res.Plan.Launches))
	}
	for i, l := range res.Plan.Launches {
		if l32 := res32.Plan.Launches[i]; l.Bytes <= 0 || 2*l.Bytes != l32.Bytes {
			t.Errorf("launch %s: %d bytes in fp16, %d in fp32", l.Kernel, l.Bytes, l32.Bytes)
		}
	}
	ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
	if err != nil {
		t.Fatal(err)
	}
	s := string(ptx)
	if strings.Contains(s, "ld.global.f32") || !strings.Contains(s, "cvt.f32.f16") || !strings.Contains(s, "cvt.rn.f16.f32") {
		t.Error("fp16 kernels should load halves, widen them and round results back")
	}
	if strings.Contains(s, ".local") {
		t.Error("fp16 kernels spill")
	}
	if _, err := Lower(g, Options{Precision: "bf16"}); err == nil {
		t.Error("precision bf16 was accepted")
	}
}

// TestTensorCoreKernels lowers GEMM-core kernels onto fp16 tensor-core
// tiles: the PTX has m16n8k16 mma instructions and no spills, split-K
// keeps float partial sums, and an fp32 compile refuses the tiles.
func TestTensorCoreKernels(t *testing.T) {
	be := backendForTest(t)
	for _, tile := range costmodel.TensorCoreTiles {
		for _, split := range []int{1, 2} {
			g, err := ir.Parse(`graph tc(%x: f32[2,64,14,14]) -> (%2) {
  %w = const f32[96,64,3,3] @w
  %b = const f32[96] @b
  %1 = conv2d %x, %w, %b {pads=[1,1,1,1]} : f32[2,96,14,14] [k1]
  %2 = relu %1 : f32[2,96,14,14] [k1]
}`)
			if err != nil {
				t.Fatal(err)
			}
			fillConsts(g)
			g.Nodes[2].Sched.Tile, g.Nodes[2].Sched.SplitK = tile.Ints(), split
			if _, err := Lower(g, Options{}); err == nil || !strings.Contains(err.Error(), "needs --precision fp16") {
				t.Errorf("fp32 compile with tile %v: %v, want a refusal", tile, err)
			}
			res, err := Lower(g, Options{Precision: "fp16"})
			if err != nil {
				t.Fatal(err)
			}
			ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
			if err != nil {
				t.Fatalf("tile %v split %d: %v", tile, split, err)
			}
			s := string(ptx)
			if !strings.Contains(s, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32") {
				t.Errorf("tile %v: no m16n8k16 mma in the PTX", tile)
			}
			if !strings.Contains(s, "ldmatrix.sync.aligned.m8n8.x4.shared.b16") || strings.Contains(s, "ld.shared.b32") || strings.Contains(s, "ld.shared.u32") {
				t.Errorf("tile %v: fragments should come from ldmatrix.x4, not 32-bit shared loads", tile)
			}
			if strings.Contains(s, ".local") {
				t.Errorf("tile %v split %d spills", tile, split)
			}
		}
	}
}

// TestCompileChannelsLast: the tiny ResNet with every activation that can
// be channels last stored so compiles to PTX, and its kernels address
// those values differently from the NCHW build (the GPU tests check the
// numbers).
func TestCompileChannelsLast(t *testing.T) {
	backendForTest(t)
	prof, err := costmodel.Lookup("h100")
	if err != nil {
		t.Fatal(err)
	}
	build := func(layout string) *Result {
		g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
		if err != nil {
			t.Fatal(err)
		}
		res, _, err := Build(g, Options{Model: "tiny", OptLevel: 2}, passes.Options{Profile: prof, Verify: true, Layout: layout})
		if err != nil {
			t.Fatalf("layout %q: %v", layout, err)
		}
		if len(res.PTX) == 0 || len(res.Plan.Launches) == 0 {
			t.Fatalf("layout %q: no PTX or no launches", layout)
		}
		return res
	}
	nchw, nhwc := build(passes.LayoutNCHW), build(ir.LayoutNHWC)
	if bytes.Equal(nchw.LLVM, nhwc.LLVM) {
		t.Error("channels-last build emits the same LLVM IR as the NCHW one")
	}
}

// TestMicroPTX: the microbenchmarks compile to one module with every
// kernel, the tensor-core one issuing mma.sync; for Hopper (the target
// of a 9.0 card) also the wgmma one, four m64n256k16 a round.
func TestMicroPTX(t *testing.T) {
	backendForTest(t)
	for _, name := range []string{DefaultTarget, TargetFor(9, 0)} {
		target, _ := LookupTarget(name)
		ptx, err := MicroPTX(target, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		kernels := []string{PeakKernel, CopyKernel, EmptyKernel, MMAPeakKernel}
		if target.Hopper {
			kernels = append(kernels, WgmmaPeakKernel)
		}
		for _, k := range kernels {
			if !bytes.Contains(ptx, []byte(".entry "+k)) {
				t.Errorf("%s: no kernel %s in the microbenchmark PTX", name, k)
			}
		}
		if n := bytes.Count(ptx, []byte("mma.sync.aligned.m16n8k16")); n < MMAChains {
			t.Errorf("%s: %d mma.sync instructions, want at least %d (one per chain)", name, n, MMAChains)
		}
		if n := bytes.Count(ptx, []byte("wgmma.mma_async.sync.aligned.m64n256k16")); n != map[bool]int{true: 4}[target.Hopper] {
			t.Errorf("%s: %d wgmma instructions", name, n)
		}
	}
	if name := TargetFor(9, 0); !Targets[name].Hopper {
		t.Errorf("a 9.0 card's target is %s, not a Hopper one", name)
	}
}

// channelsLast3x3 is a 1x1 conv (c to c1 channels), a 3x3 conv (c1 to c2)
// and a 1x1 conv (c2 to c3) on n images of hw x hw, the first two writing
// channels last, with random weights @w1, @w2, @w3.
func channelsLast3x3(t *testing.T, n, c, c1, c2, c3, hw int) *ir.Graph {
	t.Helper()
	g, err := ir.Parse(fmt.Sprintf(`graph cl(%%x: f32[%[1]d,%[2]d,%[6]d,%[6]d]) -> (%%3) {
  %%w1 = const f32[%[3]d,%[2]d,1,1] @w1
  %%1 = conv2d %%x, %%w1 : f32[%[1]d,%[3]d,%[6]d,%[6]d] [k1 layout=nhwc]
  %%w2 = const f32[%[4]d,%[3]d,3,3] @w2
  %%2 = conv2d %%1, %%w2 {pads=[1,1,1,1]} : f32[%[1]d,%[4]d,%[6]d,%[6]d] [k2 layout=nhwc]
  %%w3 = const f32[%[5]d,%[4]d,1,1] @w3
  %%3 = conv2d %%2, %%w3 : f32[%[1]d,%[5]d,%[6]d,%[6]d] [k3]
}`, n, c, c1, c2, c3, hw))
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(g)
	return g
}

// compileConv3x3 compiles channelsLast3x3's 3x3 convolution on tile with a
// K split for target in fp16 and returns the result, the PTX and the
// convolution's kernel in it (not the split-K reduction).
func compileConv3x3(t *testing.T, be Backend, tile costmodel.Tile, split int, target string) (*Result, string, string) {
	t.Helper()
	g := channelsLast3x3(t, 2, 16, 32, 48, 8, 10)
	for _, n := range g.Nodes {
		if n.Op == ir.OpConv2D && n.Inputs[1].Type.Shape[2] == 3 {
			n.Sched.Tile, n.Sched.SplitK = tile.Ints(), split
		}
	}
	res, err := Lower(g, Options{Precision: "fp16", Target: target})
	if err != nil {
		t.Fatal(err)
	}
	ptx, err := be.Compile(res.LLVM, Targets[target])
	if err != nil {
		t.Fatalf("tile %v split %d %s: %v", tile, split, target, err)
	}
	var body string
	for name, e := range entryBodies(string(ptx)) {
		if strings.Contains(name, "conv3x3") && !strings.Contains(name, "reduce") {
			body = e
		}
	}
	if body == "" {
		t.Fatalf("tile %v split %d %s: no conv3x3 kernel", tile, split, target)
	}
	return res, string(ptx), body
}

// TestOHWIWeights compiles a 3x3 convolution between channels-last values:
// its launch must read the weights transposed to [oc][r][q][c], and the
// weights file must not keep an NCHW copy nobody reads.
func TestOHWIWeights(t *testing.T) {
	g := channelsLast3x3(t, 1, 8, 16, 12, 4, 5)
	var w2 *ir.Node
	for _, n := range g.Nodes {
		if n.Op == ir.OpConst && n.Blob == "w2" {
			w2 = n
		}
	}
	res, err := Lower(g, Options{Model: "ohwi"})
	if err != nil {
		t.Fatal(err)
	}
	// The weights file holds w1, w2 (transposed) and w3, nothing else.
	want := artifact.Align(4*16*8) + artifact.Align(4*12*16*9) + artifact.Align(4*4*12)
	if int64(len(res.Weights)) != want {
		t.Errorf("weights file of %d bytes, want %d (w1, w2 once, w3)", len(res.Weights), want)
	}
	var conv2 *artifact.Launch
	for i, l := range res.Plan.Launches {
		if strings.Contains(l.Kernel, "conv3x3") {
			conv2 = &res.Plan.Launches[i]
		}
	}
	if conv2 == nil {
		t.Fatalf("no conv3x3 launch in %v", res.Plan.Launches)
	}
	off := conv2.Args[1].Offset
	got := res.Weights[off : off+4*12*16*9]
	src := w2.Const.Float32s()
	for oc := range 12 {
		for c := range 16 {
			for r := range 3 {
				for q := range 3 {
					want := src[((oc*16+c)*3+r)*3+q]
					at := 4 * (((oc*3+r)*3+q)*16 + c)
					if v := math.Float32frombits(binary.LittleEndian.Uint32(got[at:])); v != want {
						t.Fatalf("W[%d][%d][%d][%d] read as %g, want %g (OHWI order)", oc, c, r, q, v, want)
					}
				}
			}
		}
	}
}

// TestPipelinedTensorCore: a 3x3 convolution between channels-last fp16
// values stages both operands 128 bits at a time, so on every tensor-core
// tile it runs the cp.async pipeline: no register staging (no shared
// stores), no spills, stages in static shared memory up to 48 KiB and in
// dynamic shared memory the launch sizes above, and 128-bit output
// stores.
func TestPipelinedTensorCore(t *testing.T) {
	be := backendForTest(t)
	for _, tile := range costmodel.TensorCoreTiles {
		for _, split := range []int{1, 2} {
			res, ptx, body := compileConv3x3(t, be, tile, split, DefaultTarget)
			if !strings.Contains(body, "cp.async.cg.shared.global") || !strings.Contains(body, "cp.async.wait_group") {
				t.Errorf("tile %v split %d: no cp.async pipeline", tile, split)
			}
			if strings.Contains(ptx, ".extern .func llvm.") {
				t.Errorf("tile %v split %d: an intrinsic the backend does not know became a function call", tile, split)
			}
			if strings.Contains(body, "st.shared.v4") || strings.Contains(body, "st.shared.b16") || strings.Contains(body, ".local") {
				t.Errorf("tile %v split %d: stages through registers or spills", tile, split)
			}
			// Stages beyond 48 KiB are dynamic shared memory the launch asks for.
			var launch artifact.Launch
			for _, l := range res.Plan.Launches {
				if strings.Contains(l.Kernel, "conv3x3") && !strings.Contains(l.Kernel, "reduce") {
					launch = l
				}
			}
			if n := tile.PipelinedShared(); n > 48<<10 {
				if launch.SharedBytes != n || !strings.Contains(ptx, ".extern .shared .align 16 .b8 "+launch.Kernel[:4]) {
					t.Errorf("tile %v split %d: %d bytes of stages, launch asks for %d bytes of dynamic shared memory", tile, split, n, launch.SharedBytes)
				}
			} else if launch.SharedBytes != 0 {
				t.Errorf("tile %v split %d: static stages, launch asks for %d bytes", tile, split, launch.SharedBytes)
			}
			if !strings.Contains(body, "st.shared.v2.f32") {
				t.Errorf("tile %v split %d: the epilogue does not park the accumulators in shared memory", tile, split)
			}
			// The channels-last fp16 output (48 channels) is written eight
			// channels per 128-bit store; split-K writes float partial sums.
			if wide := wideStore(body); wide != (split == 1) {
				t.Errorf("tile %v split %d: 128-bit output stores %v, want %v", tile, split, wide, split == 1)
			}
		}
	}
}

// TestWgmmaKernels: compiled for sm_90a, a channels-last 3x3 convolution on
// a tile of one warpgroup per 64 rows multiplies with wgmma straight from
// shared memory (no ldmatrix, no mma.sync) under a PTX 8.0 sm_90a header;
// compiled for sm_90 the same tile stays on mma.sync.
func TestWgmmaKernels(t *testing.T) {
	be := backendForTest(t)
	n := 0
	for _, tile := range costmodel.TensorCoreTiles {
		if !tile.WarpgroupTile() {
			continue
		}
		n++
		for _, target := range []string{"sm_90a", "sm_90"} {
			_, ptx, body := compileConv3x3(t, be, tile, 1, target)
			hopper := target == "sm_90a"
			wgmma := fmt.Sprintf("wgmma.mma_async.sync.aligned.m64n%dk16.f32.f16.f16", tile.BN)
			if strings.Contains(body, wgmma) != hopper || strings.Contains(body, "mma.sync.aligned.m16n8k16") == hopper ||
				strings.Contains(body, "ldmatrix") == hopper {
				t.Errorf("tile %v %s: wgmma %v, mma.sync %v, ldmatrix %v", tile, target, strings.Contains(body, wgmma),
					strings.Contains(body, "mma.sync.aligned.m16n8k16"), strings.Contains(body, "ldmatrix"))
			}
			if hopper && (!strings.Contains(ptx, ".version 8.0\n") || !strings.Contains(ptx, ".target sm_90a\n") ||
				!strings.Contains(body, "fence.proxy.async.shared::cta") || !strings.Contains(body, "wgmma.wait_group.sync.aligned 0") ||
				!strings.Contains(body, "wgmma.wait_group.sync.aligned 1")) {
				t.Errorf("tile %v: no PTX 8.0 sm_90a header, async-proxy fence or wgmma waits (one group in flight, then none)", tile)
			}
			// The 128-byte swizzle: descriptors of layout 1, stride 1024
			// bytes, on stages aligned to the swizzle's 1024-byte atoms.
			if hopper && (!strings.Contains(body, fmt.Sprint(uint64(1<<62|64<<32|1<<16))) || !strings.Contains(ptx, ".align 1024")) {
				t.Errorf("tile %v: no 128-byte swizzle descriptor or 1024-byte aligned stages", tile)
			}
			if strings.Contains(body, ".local") {
				t.Errorf("tile %v %s: spills", tile, target)
			}
		}
	}
	if n == 0 {
		t.Error("no tensor-core tile takes wgmma")
	}
}

// TestPaddedInput: in fp16 on a tensor-core tile, a 7x7 stride-2 stem of
// three channels runs as a padding launch (no model FLOPs, 64-bit stores
// of four channels) and a GEMM staging both operands 128 bits at a time
// from the workspace and from weights laid out as [oc][r][q*4 + c] with
// zeros past the window and the channels; both launches get the same
// workspace, after any split-K partial sums.
func TestPaddedInput(t *testing.T) {
	be := backendForTest(t)
	for _, split := range []int{1, 2} {
		g, err := ir.Parse(`graph stem(%x: f32[2,3,23,21]) -> (%3) {
  %w = const f32[16,3,7,7] @w
  %b = const f32[16] @b
  %1 = conv2d %x, %w, %b {pads=[3,3,3,3], strides=[2,2]} : f32[2,16,12,11] [k1 layout=nhwc]
  %2 = relu %1 : f32[2,16,12,11] [k1 layout=nhwc]
  %w2 = const f32[8,16,1,1] @w2
  %3 = conv2d %2, %w2 : f32[2,8,12,11] [k2]
}`)
		if err != nil {
			t.Fatal(err)
		}
		fillConsts(g)
		conv := g.Nodes[2]
		conv.Sched.Tile, conv.Sched.SplitK = costmodel.TensorCoreTiles[6].Ints(), split
		res, err := Lower(g, Options{Precision: "fp16"})
		if err != nil {
			t.Fatal(err)
		}
		ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
		if err != nil {
			t.Fatal(err)
		}
		ls := res.Plan.Launches
		if len(ls) != 3+(split-1) || !strings.HasSuffix(ls[0].Kernel, "_conv7x7_pad_input") || ls[0].FLOPs != 0 ||
			!strings.Contains(ls[1].Kernel, "conv7x7_tc_relu") || ls[1].FLOPs == 0 {
			t.Fatalf("split %d: launches %+v, want the padding (no FLOPs), then the GEMM", split, ls)
		}
		ws := ls[0].Args[len(ls[0].Args)-1]
		if ws != ls[1].Args[len(ls[1].Args)-1] {
			t.Errorf("split %d: the padding writes workspace %v, the GEMM reads %v", split, ws, ls[1].Args[len(ls[1].Args)-1])
		}
		bodies := entryBodies(string(ptx))
		pad, gemm := bodies[ls[0].Kernel], bodies[ls[1].Kernel]
		if !strings.Contains(pad, "st.global.v2.u32") && !strings.Contains(pad, "st.global.v2.b32") && !strings.Contains(pad, "st.global.v4.b16") {
			t.Errorf("split %d: the padding does not store four channels at once", split)
		}
		if !strings.Contains(gemm, "cp.async.ca.shared.global") || !strings.Contains(gemm, "cp.async.cg.shared.global") || strings.Contains(gemm, "st.shared.b16") {
			t.Errorf("split %d: the GEMM does not stage both operands with cp.async (the reread input through L1)", split)
		}
		// The weights as the GEMM reads them.
		w := g.Nodes[0].Const.Float32s()
		at := ls[1].Args[1].Offset
		const K = 7 * 32
		for oc := range 16 {
			for r := range 7 {
				for j := range 32 {
					q, c := j/4, j%4
					var want float32
					if q < 7 && c < 3 {
						want = ir.HalfToFloat(ir.FloatToHalf(w[((oc*3+c)*7+r)*7+q]))
					}
					got := ir.HalfToFloat(binary.LittleEndian.Uint16(res.Weights[at+2*int64(oc*K+r*32+j):]))
					if got != want {
						t.Fatalf("split %d: padded weight [%d][%d][%d] = %v, want %v", split, oc, r, j, got, want)
					}
				}
			}
		}
	}
}

// TestPieceBanks: the 128-bit pieces of a K slice cover every (row, k
// piece) once for every tensor-core tile; on warpgroup tiles the wgmma
// core's slot of each is the 128-byte swizzle of its unswizzled address
// (cute's Swizzle<3,4,3>, what the hardware reads through a descriptor
// of that layout), and each eight in a row (one phase of a warp's
// 128-bit shared stores) land in eight distinct 16-byte bank groups.
func TestPieceBanks(t *testing.T) {
	k := newModule().makeKernel("banks", 1, 32)
	at := func(v value.Value) int {
		c, ok := constInt(v)
		if !ok {
			t.Fatalf("%v does not fold to a constant", v)
		}
		return int(c)
	}
	swizzle := func(a int) int { return a ^ (a&0x380)>>3 }
	warpgroup := 0
	for _, tile := range costmodel.TensorCoreTiles {
		b := &gemmBlock{t: tile}
		if tile.WarpgroupTile() {
			warpgroup++
		}
		for _, rows := range []int{tile.BM, tile.BN} {
			n := rows * tile.BK / 8
			seen := map[[2]int]bool{}
			for phase := 0; phase < n; phase += 8 {
				banks := map[int]bool{}
				for lin := phase; lin < phase+8; lin++ {
					r, kk := b.pieceAt(k, ci(lin))
					row, kOff := at(r), at(kk)
					if row >= rows || kOff >= tile.BK || kOff%8 != 0 {
						t.Fatalf("tile %v: piece %d at row %d, k %d", tile, lin, row, kOff)
					}
					seen[[2]int{row, kOff}] = true
					if !tile.WarpgroupTile() {
						continue
					}
					byteAt := 2 * at(swizzledAt(k, ci(row), ci(kOff)))
					if want := swizzle(row*128 + 2*kOff); byteAt != want {
						t.Fatalf("row %d, k %d: swizzled to byte %d, want %d", row, kOff, byteAt, want)
					}
					banks[byteAt/16%8] = true
				}
				if tile.WarpgroupTile() && len(banks) != 8 {
					t.Errorf("tile %v: pieces %d-%d share banks (%d distinct 16-byte groups)", tile, phase, phase+7, len(banks))
				}
			}
			if len(seen) != n {
				t.Errorf("tile %v: %d of %d pieces of a %d-row slice covered", tile, len(seen), n, rows)
			}
		}
	}
	if warpgroup == 0 {
		t.Error("no warpgroup tile among the tensor-core tiles")
	}
}

// TestClusterSplitK: on sm_90a a warpgroup tile's K split with
// reduce=cluster is one launch, without a workspace, whose blocks form
// clusters of the splits (.reqnctapercluster before its body) and add
// their parked partial sums through distributed shared memory before the
// 128-bit output stores; split through a workspace the same kernel needs
// a second launch. Other targets refuse reduce=cluster.
func TestClusterSplitK(t *testing.T) {
	backendForTest(t)
	tile := costmodel.Tile{BM: 128, BN: 128, BK: 64, TM: 64, TN: 32}
	compile := func(target, reduce string) (*Result, error) {
		g := channelsLast3x3(t, 2, 16, 32, 48, 8, 10)
		for _, n := range g.Nodes {
			if n.Op == ir.OpConv2D && n.Inputs[1].Type.Shape[2] == 3 {
				n.Sched.Tile, n.Sched.SplitK, n.Sched.Reduce = tile.Ints(), 3, reduce
			}
		}
		return Compile(g, Options{Precision: "fp16", Target: target})
	}
	conv3x3 := func(res *Result) []artifact.Launch {
		var out []artifact.Launch
		for _, l := range res.Plan.Launches {
			if strings.Contains(l.Kernel, "conv3x3") {
				out = append(out, l)
			}
		}
		return out
	}
	res, err := compile("sm_90a", ir.ReduceCluster)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := compile("sm_90a", "")
	if err != nil {
		t.Fatal(err)
	}
	cl, wl := conv3x3(res), conv3x3(ws)
	if len(cl) != 1 || len(wl) != 2 {
		t.Fatalf("split 3 is %d launches across a cluster and %d through a workspace, want 1 and 2", len(cl), len(wl))
	}
	l := cl[0]
	if l.ClusterBlocks != 3 || l.Grid[2] != 3 || wl[0].ClusterBlocks != 0 {
		t.Errorf("cluster launch: grid %v, %d blocks a cluster; workspace launch %d, want 3 of z 3, and 0", l.Grid, l.ClusterBlocks, wl[0].ClusterBlocks)
	}
	if len(l.Args) != len(wl[0].Args)-1 {
		t.Errorf("cluster launch has %d args, the workspace one %d: want one less (no workspace)", len(l.Args), len(wl[0].Args))
	}
	body := entryBodies(string(res.PTX))[l.Kernel]
	head, _, _ := strings.Cut(body, "\n{")
	for _, want := range []string{".reqnctapercluster 1, 1, 3"} {
		if !strings.Contains(head, want) {
			t.Errorf("kernel %s's directives lack %q:\n%s", l.Kernel, want, head)
		}
	}
	for _, want := range []string{"barrier.cluster.arrive", "barrier.cluster.wait", "mapa.shared::cluster.u64", "ld.shared::cluster.v4.f32"} {
		if !strings.Contains(body, want) {
			t.Errorf("kernel %s lacks %s", l.Kernel, want)
		}
	}
	if !wideStore(body) {
		t.Errorf("kernel %s stores no 128 bits at a time", l.Kernel)
	}
	if _, err := compile("sm_90", ir.ReduceCluster); !errors.Is(err, ErrUnsupported) {
		t.Errorf("reduce=cluster for sm_90 (no wgmma core): got %v, want an unsupported error", err)
	}
}

// TestPartnerUnsupported: a kernel whose partner convolution is not an
// unpadded 1x1 (a hand-written schedule; fuse-shortcut-conv never forms
// one) is refused with an unsupported error, not compiled with weights in
// the wrong layout.
func TestPartnerUnsupported(t *testing.T) {
	g, err := ir.Parse(`graph g(%x: f32[1,16,6,6]) -> (%5) {
  %w0 = const f32[16,16,1,1] @w0
  %1 = conv2d %x, %w0 : f32[1,16,6,6] [k1 layout=nhwc]
  %w3 = const f32[32,16,3,3] @w3
  %2 = conv2d %1, %w3 {pads=[1,1,1,1]} : f32[1,32,6,6] [k2 layout=nhwc]
  %w1 = const f32[32,16,1,1] @w1
  %3 = conv2d %1, %w1 : f32[1,32,6,6] [k2 layout=nhwc]
  %4 = add %2, %3 : f32[1,32,6,6] [k2 layout=nhwc]
  %w5 = const f32[8,32,1,1] @w5
  %5 = conv2d %4, %w5 : f32[1,8,6,6] [k3]
}`)
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(g)
	if _, err := Lower(g, Options{Precision: "fp16"}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "1x1") {
		t.Errorf("a 3x3 partner: got %v, want an unsupported error about 1x1 convolutions", err)
	}
}

// TestResidualPrefetch: a channels-last 1x1 convolution with a residual
// add on a 128x64 warpgroup tile reads the residual before its K loop
// (inline ld.global.v4, which nothing moves) where K is one slice, and
// in the epilogue where the loop is longer; sm_90 (no wgmma core) never
// prefetches.
func TestResidualPrefetch(t *testing.T) {
	be := backendForTest(t)
	tile := costmodel.Tile{BM: 128, BN: 64, BK: 64, TM: 64, TN: 16}
	compile := func(c int, target string) string {
		text := fmt.Sprintf(`graph res(%%x: f32[2,8,12,12]) -> (%%5) {
  %%w0 = const f32[%[1]d,8,1,1] @w0
  %%0 = conv2d %%x, %%w0 : f32[2,%[1]d,12,12] [k0 layout=nhwc]
  %%w1 = const f32[64,%[1]d,1,1] @w1
  %%1 = conv2d %%0, %%w1 : f32[2,64,12,12] [k1 layout=nhwc]
  %%w2 = const f32[64,%[1]d,1,1] @w2
  %%2 = conv2d %%0, %%w2 : f32[2,64,12,12] [k2 layout=nhwc]
  %%3 = add %%2, %%1 : f32[2,64,12,12] [k2 layout=nhwc]
  %%4 = relu %%3 : f32[2,64,12,12] [k2 layout=nhwc]
  %%w3 = const f32[8,64,1,1] @w3
  %%5 = conv2d %%4, %%w3 : f32[2,8,12,12] [k3]
}`, c)
		_, ptx := compileTiled(t, be, text, tile, target)
		for name, body := range entryBodies(ptx) {
			if strings.Contains(name, "add") {
				return body
			}
		}
		t.Fatalf("C %d %s: no kernel with the add", c, target)
		return ""
	}
	// Loads of the residual ahead of the K loop's first block label.
	ahead := func(body string) int {
		head, _, _ := strings.Cut(body, "$L__BB")
		return strings.Count(head, "ld.global.v4.u32")
	}
	// 128x64 pieces of eight over 256 threads: four a thread.
	if n := ahead(compile(64, "sm_90a")); n != 4 {
		t.Errorf("K 64 (one slice) on sm_90a: %d residual loads before the K loop, want 4", n)
	}
	if n := ahead(compile(128, "sm_90a")); n != 0 {
		t.Errorf("K 128 (two slices) on sm_90a: %d residual loads before the K loop, want 0", n)
	}
	if n := ahead(compile(64, "sm_90")); n != 0 {
		t.Errorf("K 64 on sm_90 (mma.sync core): %d residual loads before the K loop, want 0", n)
	}
}

// compileTiled compiles the fp16 graph text for target with every
// convolution on tile, through llc and the PTX rewrites, and returns the
// result and its PTX.
func compileTiled(t *testing.T, be Backend, text string, tile costmodel.Tile, target string) (*Result, string) {
	t.Helper()
	g, err := ir.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(g)
	for _, n := range g.Nodes {
		if n.Op == ir.OpConv2D {
			n.Sched.Tile = tile.Ints()
		}
	}
	res, err := Lower(g, Options{Precision: "fp16", Target: target})
	if err != nil {
		t.Fatal(err)
	}
	ptx, err := be.Compile(res.LLVM, Targets[target])
	if err == nil {
		ptx, err = rewritePTX(ptx, res.Plan.Launches)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res, string(ptx)
}

// TestTMAStaging: on sm_90a, a wgmma convolution over an NHWC fp16 input
// of channels in 64s stages both operands with the bulk tensor copy
// engine (an im2col map of the input, a tiled map of the weights),
// waiting on mbarriers; its launch carries the maps for the runtime to
// encode. Channels not in 64s, or sm_90 (mma.sync), keep cp.async.
func TestTMAStaging(t *testing.T) {
	be := backendForTest(t)
	tile := costmodel.Tile{BM: 128, BN: 64, BK: 64, TM: 64, TN: 16}
	compile := func(c int, target string) (*Result, string) {
		text := fmt.Sprintf(`graph tma(%%x: f32[2,8,12,12]) -> (%%4) {
  %%w0 = const f32[%[1]d,8,1,1] @w0
  %%0 = conv2d %%x, %%w0 : f32[2,%[1]d,12,12] [k0 layout=nhwc]
  %%w1 = const f32[64,%[1]d,3,3] @w1
  %%1 = conv2d %%0, %%w1 {pads=[1,1,1,1]} : f32[2,64,12,12] [k1 layout=nhwc]
  %%w2 = const f32[128,64,1,1] @w2
  %%2 = conv2d %%1, %%w2 {strides=[2,2]} : f32[2,128,6,6] [k2 layout=nhwc]
  %%w3 = const f32[64,128,1,1] @w3
  %%3 = conv2d %%2, %%w3 : f32[2,64,6,6] [k3 layout=nhwc]
  %%w4 = const f32[8,64,1,1] @w4
  %%4 = conv2d %%3, %%w4 : f32[2,8,6,6] [k4]
}`, c)
		return compileTiled(t, be, text, tile, target)
	}
	maps := func(res *Result, kernel string) []*artifact.TensorMap {
		var out []*artifact.TensorMap
		for _, l := range res.Plan.Launches {
			if strings.HasPrefix(l.Kernel, kernel) {
				for _, a := range l.Args {
					if a.Buffer == artifact.BufTensorMaps {
						out = append(out, a.Map)
					}
				}
			}
		}
		return out
	}
	res, ptx := compile(64, "sm_90a")
	if err := res.Plan.Validate(); err != nil {
		t.Fatalf("plan with tensor maps: %v", err)
	}
	if !strings.Contains(ptx, ".version 8.3\n") {
		t.Error("PTX with tensor maps by value not raised to ISA 8.3")
	}
	bodies := entryBodies(ptx)
	// k1: the 3x3 over the 64-channel k0 output; k2: the strided 1x1.
	want := map[string][]artifact.TensorMap{
		"k001": {
			{Dims: []int64{64, 12, 12, 2}, Strides: []int64{128, 128 * 12, 128 * 144}, ElementStrides: []int{1, 1, 1, 1}, Swizzle: 128,
				Im2col: &artifact.Im2col{Lower: []int{-1, -1}, Upper: []int{-1, -1}, Channels: 64, Pixels: 128}},
			{Dims: []int64{576, 64}, Strides: []int64{1152}, Box: []int{64, 64}, ElementStrides: []int{1, 1}, Swizzle: 128},
		},
		"k002": {
			{Dims: []int64{64, 12, 12, 2}, Strides: []int64{128, 128 * 12, 128 * 144}, ElementStrides: []int{1, 2, 2, 1}, Swizzle: 128,
				Im2col: &artifact.Im2col{Lower: []int{0, 0}, Upper: []int{-1, -1}, Channels: 64, Pixels: 128}},
			{Dims: []int64{64, 128}, Strides: []int64{128}, Box: []int{64, 64}, ElementStrides: []int{1, 1}, Swizzle: 128},
		},
		// k3: an unpadded 1x1 of stride 1 reads its input as the GEMM's
		// A, [pixels][C], through a tiled map.
		"k003": {
			{Dims: []int64{128, 72}, Strides: []int64{256}, Box: []int{64, 128}, ElementStrides: []int{1, 1}, Swizzle: 128},
			{Dims: []int64{128, 64}, Strides: []int64{256}, Box: []int{64, 64}, ElementStrides: []int{1, 1}, Swizzle: 128},
		},
	}
	for kernel, w := range want {
		got := maps(res, kernel)
		for _, m := range got {
			m.Buffer, m.Offset = "", 0
		}
		if diff := cmp.Diff(w, derefMaps(got)); diff != "" {
			t.Errorf("%s's tensor maps (-want +got):\n%s", kernel, diff)
		}
		for name, body := range bodies {
			if !strings.HasPrefix(name, kernel) {
				continue
			}
			if n := strings.Count(body, "cp.async.bulk.tensor."); n != 4 {
				t.Errorf("%s: %d bulk tensor copies, want 4 (A and B, before and in the K loop)", name, n)
			}
			// The maps come by value: 128-byte parameters, read through
			// their generic addresses.
			if n := strings.Count(body, ".param .align 64 .b8 "); n != 2 || strings.Count(body, "cvta.param.u64") < 2 {
				t.Errorf("%s: %d tensor maps passed by value, want 2", name, n)
			}
			if strings.Contains(body, "cp.async.cg") || !strings.Contains(body, "mbarrier.try_wait.parity") {
				t.Errorf("%s: still copies with cp.async, or never waits on an mbarrier", name)
			}
		}
	}
	// 32 channels: the 3x3's slices span taps; its input stays on cp.async.
	res, _ = compile(32, "sm_90a")
	if m := maps(res, "k001"); len(m) != 0 {
		t.Errorf("3x3 over 32 channels: %d tensor maps, want none", len(m))
	}
	res, ptx = compile(64, "sm_90")
	if n := res.Plan.TensorMaps(); n != 0 || strings.Contains(ptx, "cp.async.bulk") {
		t.Errorf("sm_90 (mma.sync core): %d tensor maps, bulk copies %v; want none", n, strings.Contains(ptx, "cp.async.bulk"))
	}
}

func derefMaps(ms []*artifact.TensorMap) []artifact.TensorMap {
	out := make([]artifact.TensorMap, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out
}

// TestMapsByValue: a tensor map parameter becomes a 128-byte parameter
// whose loads become its generic address; a map the PTX does not
// declare as a pointer is an error.
func TestMapsByValue(t *testing.T) {
	// Parameter 1 is a map; parameter 10's name extends parameter 1's.
	var params, loads []string
	for j := range 11 {
		params = append(params, fmt.Sprintf("\t.param .u64 k000_x_param_%d", j))
		loads = append(loads, fmt.Sprintf("\tld.param.u64 \t%%rd%d, [k000_x_param_%d];\n", j+1, j))
	}
	ptx := ".visible .entry k000_x(\n" + strings.Join(params, ",\n") + "\n)\n{\n" + strings.Join(loads, "") + "}\n"
	args := make([]artifact.Arg, 11)
	for j := range args {
		args[j] = artifact.Arg{Buffer: artifact.BufArena}
	}
	args[1] = artifact.Arg{Buffer: artifact.BufTensorMaps, Map: &artifact.TensorMap{}}
	launches := []artifact.Launch{{Kernel: "k000_x", Args: args}}
	got, err := mapsByValue([]byte(ptx), launches)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(".param .u64 k000_x_param_1,", ".param .align 64 .b8 k000_x_param_1[128],",
		"ld.param.u64 \t%rd2, [k000_x_param_1];", "mov.u64 \t%rd2, k000_x_param_1;\n\tcvta.param.u64 \t%rd2, %rd2;").Replace(ptx)
	if string(got) != want {
		t.Errorf("rewritten PTX:\n%s\nwant:\n%s", got, want)
	}
	if _, err := mapsByValue(got, launches); err == nil || !strings.Contains(err.Error(), "parameter 1 is not a .u64") {
		t.Errorf("map on a parameter already rewritten: %v", err)
	}
	launches[0].Kernel = "k001_y"
	if _, err := mapsByValue([]byte(ptx), launches); err == nil || !strings.Contains(err.Error(), "not in the PTX") {
		t.Errorf("map of a kernel the PTX lacks: %v", err)
	}
}

// wideStore says a kernel's PTX stores 128 bits at a time (four words of
// halves, typed as llc pleases).
func wideStore(body string) bool {
	return strings.Contains(body, "st.global.v4.u32") || strings.Contains(body, "st.global.v4.b32")
}

// TestGlobalPoolNHWC: a channels-last global pool runs a block per image
// and run of channels, a group reading at most 32 bytes of a pixel: half
// channels in eights in 128-bit loads, two groups to a run of 16
// channels; 20 half channels one at a time, 16 to a run; float channels
// eight to a run. The lanes meet by shuffles.
func TestGlobalPoolNHWC(t *testing.T) {
	be := backendForTest(t)
	text := `graph g(%x: f32[2,8,24,30]) -> (%2, %4) {
  %w1 = const f32[264,8,1,1] @w1
  %1 = conv2d %x, %w1 : f32[2,264,24,30] [k1 layout=nhwc]
  %2 = global_avgpool %1 : f32[2,264,1,1] [k2]
  %w2 = const f32[20,8,1,1] @w2
  %3 = conv2d %x, %w2 : f32[2,20,24,30] [k3 layout=nhwc]
  %4 = global_maxpool %3 : f32[2,20,1,1] [k4]
}`
	for _, c := range []struct {
		precision string
		grids     [2]int // blocks of the 264- and the 20-channel pool
		vector    bool
	}{
		{"fp16", [2]int{2 * 17, 2 * 2}, true},
		{"fp32", [2]int{2 * 33, 2 * 3}, false},
	} {
		g, err := ir.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		fillConsts(g)
		res, err := Lower(g, Options{Precision: c.precision})
		if err != nil {
			t.Fatal(err)
		}
		ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
		if err != nil {
			t.Fatal(err)
		}
		bodies := entryBodies(string(ptx))
		var pools []string
		for _, l := range res.Plan.Launches {
			if strings.Contains(l.Kernel, "global_") {
				pools = append(pools, l.Kernel)
				if want := c.grids[len(pools)-1]; l.Grid != [3]int{want, 1, 1} || l.Block != [3]int{256, 1, 1} {
					t.Errorf("%s %s: grid %v block %v, want [%d 1 1] of 256", c.precision, l.Kernel, l.Grid, l.Block, want)
				}
			}
		}
		if len(pools) != 2 {
			t.Fatalf("%s: pool launches %v, want two", c.precision, pools)
		}
		wide := bodies[pools[0]]
		if strings.Contains(wide, "ld.global.nc.v4") != c.vector || !strings.Contains(wide, "shfl.sync.bfly") || strings.Contains(wide, ".local") {
			t.Errorf("%s %s: 128-bit loads %v (want %v), shuffles %v, spills %v", c.precision, pools[0],
				strings.Contains(wide, "ld.global.nc.v4"), c.vector, strings.Contains(wide, "shfl.sync.bfly"), strings.Contains(wide, ".local"))
		}
	}
}

// TestDepthwiseRows: an NCHW depthwise convolution runs a thread per run
// of eight outputs of a row (19 columns: three runs), loading each
// window row's ten input columns once for the run.
func TestDepthwiseRows(t *testing.T) {
	be := backendForTest(t)
	g, err := ir.Parse(`graph g(%x: f32[2,24,13,19]) -> (%1) {
  %wd = const f32[24,1,3,3] @wd
  %1 = conv2d %x, %wd {group=24, pads=[1,1,1,1]} : f32[2,24,13,19] [k1]
}`)
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(g)
	res, err := Lower(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := res.Plan.Launches[0]
	if threads := 2 * 24 * 13 * 3; l.Grid[0] != (threads+255)/256 {
		t.Errorf("grid %v, want %d blocks of 256 for %d runs", l.Grid, (threads+255)/256, threads)
	}
	ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
	if err != nil {
		t.Fatal(err)
	}
	body := entryBodies(string(ptx))[l.Kernel]
	// Three window rows of ten columns, nine weights.
	if n := strings.Count(body, "ld.global"); n != 3*10+9 {
		t.Errorf("%d global loads, want 39", n)
	}
	if n := strings.Count(body, "st.global"); n != 8 {
		t.Errorf("%d global stores, want 8 (one per output of the run)", n)
	}
}
