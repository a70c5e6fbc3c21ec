package passes

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"cnnc/frontend/onnx"
	"cnnc/frontend/onnx/onnxbuild"
	"cnnc/internal/conformance"
	"cnnc/internal/golden"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes/costmodel"
)

var update = flag.Bool("update", false, "rewrite the want.ir sections of testdata/*.txtar")

func h100(t *testing.T) costmodel.Profile {
	t.Helper()
	p, err := costmodel.Lookup("h100")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launchBound is h100 behind a slow host: 20 us between launches, so
// that saving a launch is worth more than the fused kernel loses.
func launchBound(t *testing.T) costmodel.Profile {
	p := h100(t)
	p.LaunchUs = 20
	return p
}

// fillConsts gives parsed consts without data deterministic random data
// (never zeros; batch-norm variances positive).
func fillConsts(g *ir.Graph) {
	for i, n := range g.Nodes {
		if n.Op == ir.OpConst && n.Const == nil {
			r := interp.Random(n.Out.Type.Shape, uint64(100+i))
			for j := range r.Data {
				r.Data[j] = r.Data[j]*0.5 + 1 // in [0.5, 1.5)
			}
			n.Const = ir.NewF32(r.Shape, r.Data)
		}
	}
}

// sameMeaning checks that the interpreter gives the same outputs for two
// runs of a graph (before and after a pass) on the same random inputs.
func sameMeaning(t *testing.T, want []*interp.Tensor, g *ir.Graph, inputs []*interp.Tensor) {
	t.Helper()
	got, err := interp.Run(g, inputs)
	if err != nil {
		t.Fatalf("interpreting the result: %v", err)
	}
	for i := range want {
		if err := interp.Compare(got[i], want[i], 1e-4, 1e-5); err != nil {
			t.Errorf("output %d changed meaning: %v", i, err)
		}
	}
}

// TestGolden runs each pass alone on testdata/<pass>.txtar's input and
// compares the printed result with want.ir (go test ./passes -update
// rewrites it); the interpreter must give the same outputs before and
// after.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			pass, ok := LookupPass(name)
			if !ok {
				t.Fatalf("no pass named %s", name)
			}
			input := golden.Input(t, file, "input.ir")
			g, err := ir.Parse(input)
			if err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(g); err != nil {
				t.Fatalf("input does not verify: %v", err)
			}
			fillConsts(g)
			inputs := interp.RandomInputs(g, 1)
			before, err := interp.Run(g, inputs)
			if err != nil {
				t.Fatal(err)
			}
			// The fusion passes and tile run after the passes they build on.
			c := &Context{Profile: h100(t)}
			switch name {
			case "fuse-depthwise-pointwise":
				// On h100 the fused kernel loses (see TestFusionCounts).
				c.Profile = launchBound(t)
			case "choose-layout":
				// The cost model keeps NCHW (see TestChooseLayout).
				c.Layout = ir.LayoutNHWC
			}
			if strings.HasPrefix(name, "fuse-") && name != "fuse-epilogue" || name == "tile" {
				if err := FuseEpilogue(g, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := pass.Run(g, c); err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(g); err != nil {
				t.Fatalf("result does not verify: %v\n%s", err, g)
			}
			sameMeaning(t, before, g, inputs)
			golden.Check(t, file, "want.ir", []byte(g.String()), *update)
		})
	}
}

func TestPipelineOrder(t *testing.T) {
	pos := map[string]int{}
	for i, p := range Pipeline {
		if _, dup := pos[p.Name]; dup {
			t.Errorf("pass %s listed twice", p.Name)
		}
		pos[p.Name] = i
		if p.Why == "" || p.Run == nil {
			t.Errorf("pass %s lacks a reason or a function", p.Name)
		}
	}
	for _, c := range mustPrecede {
		a, okA := pos[c[0]]
		b, okB := pos[c[1]]
		if !okA || !okB {
			t.Errorf("constraint %v names an unknown pass", c)
			continue
		}
		if a >= b {
			t.Errorf("%s must run before %s", c[0], c[1])
		}
	}
}

// optimize runs the -O2 pipeline with the verifier after every pass.
func optimize(t *testing.T, g *ir.Graph) *Context {
	t.Helper()
	c, err := Run(g, Options{OptLevel: 2, Verify: true, Profile: h100(t), Model: g.Name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkMemoryPlan checks that no two buffers live at the same kernel
// overlap in the arena.
func checkMemoryPlan(t *testing.T, g *ir.Graph, m *MemoryPlan) {
	t.Helper()
	kernels := Kernels(g)
	type span struct {
		first, last int
		off, size   int64
		v           *ir.Value
	}
	life := map[int64]map[*ir.Value]*span{}
	var spans []*span
	note := func(v *ir.Value, at int) {
		off, ok := m.Offsets[v]
		if !ok {
			if v.Def != nil && v.Def.Op == ir.OpConst {
				return
			}
			t.Fatalf("%s has no arena offset", v)
		}
		if life[off] == nil {
			life[off] = map[*ir.Value]*span{}
		}
		s := life[off][v]
		if s == nil {
			s = &span{first: at, last: at, off: off, size: v.Type.Bytes(), v: v}
			life[off][v] = s
			spans = append(spans, s)
		}
		s.first, s.last = min(s.first, at), max(s.last, at)
	}
	for _, v := range g.Inputs {
		note(v, -1)
	}
	for i, k := range kernels {
		for _, in := range k.Inputs {
			note(in, i)
		}
		note(k.Root().Out, i)
	}
	for _, v := range g.Outputs {
		note(v, len(kernels))
	}
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			alias := a.off == b.off && (isViewOf(a.v, b.v) || isViewOf(b.v, a.v))
			if alias {
				continue
			}
			if a.first <= b.last && b.first <= a.last && a.off < b.off+b.size && b.off < a.off+a.size {
				t.Errorf("%s and %s are live together (kernels %d-%d, %d-%d) and overlap in the arena", a.v, b.v, a.first, a.last, b.first, b.last)
			}
		}
	}
	if m.Bytes > m.Unshared {
		t.Errorf("arena %d bytes exceeds the unshared %d", m.Bytes, m.Unshared)
	}
}

func isViewOf(v, of *ir.Value) bool {
	for v.Def != nil && v.Def.Op.View {
		v = v.Def.Inputs[0]
		if v == of {
			return true
		}
	}
	return false
}

// TestMeaningOnModels runs -O2 on every conformance case and the example
// models: the interpreter's outputs stay the same, and the memory plan
// never places two live buffers on each other.
func TestMeaningOnModels(t *testing.T) {
	type model struct {
		name   string
		g      *ir.Graph
		inputs []*interp.Tensor
	}
	var models []model
	cases, err := conformance.Cases(conformance.Dir(1))
	if err != nil {
		if os.Getenv("CNNC_SKIP_CONFORMANCE") != "1" {
			t.Fatalf("%v; set CNNC_SKIP_CONFORMANCE=1 to skip", err)
		}
	}
	for _, c := range cases {
		if _, unsup := conformance.ExpectedUnsupported[c.Name]; unsup {
			continue
		}
		l, err := conformance.Load(c)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		models = append(models, model{c.Name, l.Graph, l.Inputs})
	}
	for _, b := range []*onnxbuild.Builder{onnxbuild.TinyResNet(1)} {
		g, err := onnx.Import(b.Bytes(), "tiny.onnx", "", onnx.Options{})
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, model{"tinyresnet", g, interp.RandomInputs(g, 3)})
	}
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			want, err := interp.Run(m.g, m.inputs)
			if err != nil {
				t.Fatal(err)
			}
			c := optimize(t, m.g)
			sameMeaning(t, want, m.g, m.inputs)
			checkMemoryPlan(t, m.g, c.Memory)
		})
	}
}

// kernelOps describes each kernel as its ops joined by +.
func kernelOps(g *ir.Graph) []string {
	var out []string
	for _, k := range Kernels(g) {
		var ops []string
		for _, n := range k.Nodes {
			ops = append(ops, n.Op.Name)
		}
		out = append(out, strings.Join(ops, "+"))
	}
	return out
}

// TestFusionCounts counts kernels the way the issue states them: a ResNet
// block's conv+bn+relu+add is one kernel, an inverted-residual block at
// most two.
func TestFusionCounts(t *testing.T) {
	g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	optimize(t, g)
	ops := kernelOps(g)
	if !slices.Contains(ops, "conv2d+add+relu") {
		t.Errorf("no ResNet block conv+bn+add+relu as one kernel; kernels: %v", ops)
	}
	for _, k := range ops {
		if strings.Contains(k, "batchnorm") {
			t.Errorf("a batch-norm survived folding: %s", k)
		}
	}

	block, err := ir.Parse(golden.Input(t, filepath.Join("testdata", "fuse-depthwise-pointwise.txtar"), "input.ir"))
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(block)
	other, err := ir.Parse(golden.Input(t, filepath.Join("testdata", "fuse-depthwise-pointwise.txtar"), "input.ir"))
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(other)
	// The fused kernel recomputes the depthwise output per row of tiles
	// and waits on its taps every K step: on h100 the cost model predicts
	// a loss and keeps the block in three kernels; where launches are
	// dear it fuses to two.
	c := optimize(t, other)
	var d *Decision
	for i := range c.Decisions {
		if c.Decisions[i].Pass == "fuse-depthwise-pointwise" {
			d = &c.Decisions[i]
		}
	}
	if d == nil {
		t.Fatal("fuse-depthwise-pointwise recorded no decision on the inverted-residual block")
	}
	if d.Taken != (d.AfterNs < d.BeforeNs) {
		t.Errorf("decision %v: taken %v does not follow its prediction", d, d.Taken)
	}
	if _, err := Run(block, Options{OptLevel: 2, Verify: true, Profile: launchBound(t), Model: block.Name}); err != nil {
		t.Fatal(err)
	}
	if got := kernelOps(block); len(got) > 2 {
		t.Errorf("inverted-residual block with dear launches is %d kernels, want at most 2: %v", len(got), got)
	} else {
		fmt.Println("inverted-residual block kernels:", got)
	}
	// The depthwise-separable pair of the tiny ResNet fuses there too.
	g2, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(g2, Options{OptLevel: 2, Verify: true, Profile: launchBound(t), Model: g2.Name}); err != nil {
		t.Fatal(err)
	}
	if ops := kernelOps(g2); !slices.Contains(ops, "conv2d+clip+conv2d") {
		t.Errorf("the depthwise-separable block is not one kernel with dear launches; kernels: %v", ops)
	}
}

// TestO0IsOneKernelPerLayer: without optimization every non-view node is
// its own kernel.
func TestO0IsOneKernelPerLayer(t *testing.T) {
	g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	layers := 0
	for _, n := range g.Nodes {
		if n.Op != ir.OpConst && !n.Op.View {
			layers++
		}
	}
	if _, err := Run(g, Options{OptLevel: 0, Profile: h100(t)}); err != nil {
		t.Fatal(err)
	}
	if got := len(Kernels(g)); got != layers {
		t.Errorf("-O0 gives %d kernels for %d layers", got, layers)
	}
}

// TestChooseLayout: with the cost model's current costs (strided
// accesses on the convolution GEMM) no group goes channels last, and
// every decision follows its prediction; forced, the models keep their
// meaning and verify, and the values that go channels last are only
// convolution and element-wise outputs.
func TestChooseLayout(t *testing.T) {
	g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := optimize(t, g)
	n := 0
	for _, d := range c.Decisions {
		if d.Pass != "choose-layout" {
			continue
		}
		n++
		if d.Taken != (d.AfterNs < d.BeforeNs) {
			t.Errorf("decision %v: taken %v does not follow its prediction", d, d.Taken)
		}
	}
	if n == 0 {
		t.Error("choose-layout decided nothing on the tiny ResNet")
	}
	for _, name := range []string{"tinyresnet", "light_resnet50", "light_squeezenet"} {
		var g *ir.Graph
		if name == "tinyresnet" {
			g, err = onnx.Import(onnxbuild.TinyResNet(2).Bytes(), "tiny.onnx", "", onnx.Options{})
		} else {
			g, err = onnx.Load(filepath.Join(conformance.Dir(1), "light", name+".onnx"), onnx.Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		inputs := interp.RandomInputs(g, 5)
		want, err := interp.Run(g, inputs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(g, Options{OptLevel: 2, Verify: true, Profile: h100(t), Model: name, Layout: ir.LayoutNHWC}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameMeaning(t, want, g, inputs)
		last := 0
		for _, n := range g.Nodes {
			if n.Sched.Layout != "" {
				last++
			}
		}
		if last == 0 {
			t.Errorf("%s: forced channels last, no value is", name)
		}
	}
	if _, err := Run(g, Options{Layout: "nchwc"}); err == nil {
		t.Error("layout nchwc was accepted")
	}
}

// TestTunedSchedules: a forced tile lands on every GEMM kernel that can
// take it, and a tuning's schedules (by KernelKey) replace the cost
// model's choice where they fit, and only there.
func TestTunedSchedules(t *testing.T) {
	load := func() *ir.Graph {
		g, err := onnx.Import(onnxbuild.TinyResNet(2).Bytes(), "tiny.onnx", "", onnx.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	gemms := func(g *ir.Graph) []*Kernel {
		var out []*Kernel
		for _, k := range Kernels(g) {
			if costmodel.IsGemmAnchor(k.Anchor) {
				out = append(out, k)
			}
		}
		return out
	}
	force := costmodel.TensorCoreTiles[2]
	g := load()
	if _, err := Run(g, Options{OptLevel: 2, Profile: h100(t), Precision: "fp16", ForceTile: &force}); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, k := range gemms(g) {
		key := KernelKey(k)
		if key == "" || keys[key] {
			t.Errorf("kernel %s: key %q empty or not unique", k.Anchor.Describe(), key)
		}
		keys[key] = true
		_, _, kk, _ := costmodel.GemmShape(k.Anchor)
		if got := costmodel.TileFromInts(k.Anchor.Sched.Tile); got != force && scheduleValid(force, kk, 1) {
			t.Errorf("kernel %s on tile %v, forced %v", key, got, force)
		}
	}
	// Tune the first kernel to a schedule the cost model would not pick,
	// and give an unknown key and an invalid tile.
	// Keys from the optimized graph (fusion does not depend on tiles).
	var ks []*Kernel // the kernels deep enough for a tensor-core tile
	for _, k := range gemms(g) {
		if _, _, kk, _ := costmodel.GemmShape(k.Anchor); kk >= 32 {
			ks = append(ks, k)
		}
	}
	if len(ks) < 2 {
		t.Fatalf("%d GEMM kernels with K >= 32", len(ks))
	}
	tuned := ir.Schedule{Tile: costmodel.TensorCoreTiles[len(costmodel.TensorCoreTiles)-1].Ints(), SplitK: 1}
	first, second := KernelKey(ks[0]), KernelKey(ks[1])
	g = load()
	c, err := Run(g, Options{OptLevel: 2, Profile: h100(t), Precision: "fp16", Tuned: map[string]ir.Schedule{
		first: tuned, "no/such/node": tuned, second: {Tile: []int{1, 2, 3, 4, 5}, SplitK: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range c.Decisions {
		if d.Pass == "tile" && strings.HasPrefix(d.What, "tuned") {
			n++
		}
	}
	for _, k := range gemms(g) {
		switch KernelKey(k) {
		case first:
			if !slices.Equal(k.Anchor.Sched.Tile, tuned.Tile) || k.Anchor.Sched.SplitK != 1 {
				t.Errorf("tuned kernel on %v", k.Anchor.Sched)
			}
		case second:
			if slices.Equal(k.Anchor.Sched.Tile, []int{1, 2, 3, 4, 5}) {
				t.Error("an invalid tuned tile was taken")
			}
		}
	}
	if n != 1 {
		t.Errorf("%d tuned decisions, want 1", n)
	}
}

// TestShortcutConvResNet50: each of ResNet-50's four projection shortcuts
// (a strided or widening 1x1 conv beside a bottleneck's last 1x1 conv) is
// summed in that conv's GEMM at batch 32 in fp16, one kernel with the add
// and ReLU, and the kernel's GEMM runs over both convolutions' K.
func TestShortcutConvResNet50(t *testing.T) {
	g, err := onnx.Import(onnxbuild.ResNet50(1, 1).Bytes(), "resnet50.onnx", "", onnx.Options{Batch: 32})
	if err != nil {
		t.Fatal(err)
	}
	p := h100(t)
	p.Wgmma = true
	if _, err := Run(g, Options{OptLevel: 2, Verify: true, Profile: p, Precision: "fp16", Model: g.Name}); err != nil {
		t.Fatal(err)
	}
	fused := 0
	for _, k := range Kernels(g) {
		if k.Partner == nil {
			continue
		}
		fused++
		if got := strings.Join(kernelOps(&ir.Graph{Nodes: k.Nodes}), ""); got != "conv2d+conv2d+add+relu" {
			t.Errorf("kernel with a partner computes %s, want conv2d+conv2d+add+relu", got)
		}
		_, _, kk, _ := k.GemmShape()
		want := k.Anchor.Inputs[0].Type.Shape[1] + k.Partner.Inputs[0].Type.Shape[1]
		if kk != want {
			t.Errorf("%s: GEMM K %d, want the two inputs' channels, %d", k.Anchor.Describe(), kk, want)
		}
	}
	if fused != 4 {
		t.Errorf("%d projection shortcuts summed in a GEMM, want ResNet-50's 4; kernels: %v", fused, kernelOps(g))
	}
}

// TestTileTuningOnly: on Hopper the tile pass adds no K split across a
// cluster of its own (the cost model does not tell when one pays), takes
// one from a tuned schedule in pairs, and neither for a split of 4
// (slower than the workspace, costmodel.MaxClusterSplit) nor off Hopper.
// Nor does it choose a four-warpgroup tile (costmodel.Tile.TuningOnly)
// of its own, but takes one from a tuned schedule.
func TestTileTuningOnly(t *testing.T) {
	compile := func(wgmma bool, tuned map[string]ir.Schedule) *ir.Graph {
		g, err := onnx.Import(onnxbuild.ResNet50(1, 1).Bytes(), "resnet50.onnx", "", onnx.Options{Batch: 32})
		if err != nil {
			t.Fatal(err)
		}
		p := h100(t)
		p.Wgmma = wgmma
		if _, err := Run(g, Options{OptLevel: 2, Verify: true, Profile: p, Precision: "fp16", Tuned: tuned, Model: g.Name}); err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := compile(true, nil)
	var keys []string
	for _, k := range Kernels(g) {
		if !costmodel.IsGemmAnchor(k.Anchor) {
			continue
		}
		if w := k.Anchor.Inputs[1].Type.Shape; len(w) == 4 && w[2] == 3 {
			keys = append(keys, KernelKey(k))
		}
		if k.Anchor.Sched.Reduce != "" {
			t.Errorf("%s: untuned, reduce=%s", k.Anchor.Describe(), k.Anchor.Sched.Reduce)
		}
		if tl := costmodel.TileFromInts(k.Anchor.Sched.Tile); tl.TuningOnly() {
			t.Errorf("%s: untuned, tuning-only tile %v", k.Anchor.Describe(), tl)
		}
	}
	tile := costmodel.Tile{BM: 128, BN: 256, BK: 64, TM: 64, TN: 64}
	wide := costmodel.Tile{BM: 256, BN: 64, BK: 64, TM: 64, TN: 16}
	if !wide.TuningOnly() {
		t.Fatalf("%v is not tuning-only", wide)
	}
	tuned := map[string]ir.Schedule{
		keys[len(keys)-1]: {Tile: tile.Ints(), SplitK: 2, Reduce: ir.ReduceCluster},
		keys[len(keys)-2]: {Tile: tile.Ints(), SplitK: 4, Reduce: ir.ReduceCluster},
		keys[0]:           {Tile: wide.Ints(), SplitK: 1},
	}
	for _, wgmma := range []bool{true, false} {
		got := map[string]string{}
		for _, k := range Kernels(compile(wgmma, tuned)) {
			got[KernelKey(k)] = k.Anchor.Sched.Reduce
			if KernelKey(k) == keys[0] && costmodel.TileFromInts(k.Anchor.Sched.Tile) != wide {
				t.Errorf("wgmma %v: tuned tile %v gave %v", wgmma, wide, k.Anchor.Sched.Tile)
			}
		}
		want := ""
		if wgmma {
			want = ir.ReduceCluster
		}
		if got[keys[len(keys)-1]] != want || got[keys[len(keys)-2]] != "" {
			t.Errorf("wgmma %v: tuned reduce=cluster split 2 gave %q, split 4 %q; want %q and none", wgmma,
				got[keys[len(keys)-1]], got[keys[len(keys)-2]], want)
		}
	}
}

// TestShortcutWithoutPrologue: a 1x1 conv that reads a depthwise conv
// and is summed with another 1x1 conv's output takes one fusion or the
// other, never both (codegen gives the depthwise prologue one operand):
// with launches dear, both would pay. The graph keeps its meaning.
func TestShortcutWithoutPrologue(t *testing.T) {
	g, err := ir.Parse(`graph g(%x: f32[1,32,14,14], %y: f32[1,48,14,14]) -> (%6) {
  %wd = const f32[32,1,3,3] @wd
  %1 = conv2d %x, %wd {group=32, pads=[1,1,1,1]} : f32[1,32,14,14]
  %2 = clip %1 {max=6, min=0} : f32[1,32,14,14]
  %wp = const f32[64,32,1,1] @wp
  %3 = conv2d %2, %wp : f32[1,64,14,14]
  %ws = const f32[64,48,1,1] @ws
  %4 = conv2d %y, %ws : f32[1,64,14,14]
  %5 = add %3, %4 : f32[1,64,14,14]
  %6 = relu %5 : f32[1,64,14,14]
}`)
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(g)
	inputs := interp.RandomInputs(g, 3)
	before, err := interp.Run(g, inputs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Run(g, Options{OptLevel: 2, Verify: true, Profile: launchBound(t), Model: g.Name})
	if err != nil {
		t.Fatal(err)
	}
	taken := map[string]bool{}
	for _, d := range c.Decisions {
		taken[d.Pass] = taken[d.Pass] || d.Taken
	}
	if !taken["fuse-shortcut-conv"] && !taken["fuse-depthwise-pointwise"] {
		t.Errorf("neither fusion taken with dear launches: %v", kernelOps(g))
	}
	for _, k := range Kernels(g) {
		if k.Partner != nil && len(k.Prologue) > 0 {
			t.Errorf("kernel %v has both a partner (%s) and a prologue", kernelOps(&ir.Graph{Nodes: k.Nodes}), k.Partner.Describe())
		}
	}
	sameMeaning(t, before, g, inputs)
}
