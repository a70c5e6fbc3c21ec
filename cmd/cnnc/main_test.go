package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cnnc/artifact"
	"cnnc/bench"
	"cnnc/codegen"
	"cnnc/frontend/onnx"
	"cnnc/frontend/onnx/onnxbuild"
	"cnnc/internal/tensorfile"
	"cnnc/ir/interp"
	"cnnc/passes"
	"cnnc/passes/costmodel"
)

// cli runs the CLI in process and returns the exit code, stdout and stderr.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func exampleOnDisk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := os.WriteFile(p, exampleModel, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputExitCodes(t *testing.T) {
	model := exampleOnDisk(t)
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong.npy")
	if err := os.WriteFile(wrong, tensorfile.EncodeNPY([]int{1, 3, 16, 16}, make([]float32, 768)), 0o644); err != nil {
		t.Fatal(err)
	}
	unsup := onnxbuild.New("bad", 17)
	unsup.Output(unsup.Node("NonMaxSuppression", []string{unsup.Input("x", onnx.DTFloat, 1, 4)}), onnx.DTFloat)
	unsupPath := filepath.Join(dir, "unsup.onnx")
	if err := os.WriteFile(unsupPath, unsup.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyTuning := filepath.Join(dir, "empty.tune.json")
	if err := os.WriteFile(emptyTuning, []byte(`{"model": "tiny.onnx", "kernels": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"inspect"}, "want one model file"},
		{[]string{"inspect", filepath.Join(dir, "missing.onnx")}, "cannot read the model"},
		{[]string{"inspect", model, "--batch", "-3"}, "want a positive batch"},
		{[]string{"inspect", model, "--frob"}, "flag provided but not defined"},
		{[]string{"eval", model, "--input", wrong}, "has shape [1 3 16 16], the model wants [1 3 32 32]"},
		{[]string{"eval", model, "--input", "nosuch=" + wrong}, "the model has no input of that name"},
		{[]string{"eval", model, "--input", filepath.Join(dir, "missing.npy")}, "missing.npy"},
		{[]string{"compile", unsupPath, "-o", filepath.Join(dir, "unsup.ptx")}, "unsupported: op NonMaxSuppression"},
		{[]string{"compile", model, "--target", "sm_50"}, `unknown target "sm_50"`},
		{[]string{"compile", model, "--tuned", filepath.Join(dir, "missing.tune.json")}, "--tuned: open"},
		{[]string{"compile", model, "--tuned", wrong}, "not a tuning file"},
		{[]string{"compile", model, "--tuned", emptyTuning}, "a tuning file with no kernels"},
	}
	for _, c := range cases {
		code, _, stderr := cli(c.args...)
		if code != exitBadInput {
			t.Errorf("cnnc %v: exit %d, want %d (stderr %q)", c.args, code, exitBadInput, stderr)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("cnnc %v: stderr %q, want one line containing %q", c.args, stderr, c.want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "unsup*")); len(left) != 1 {
		t.Errorf("a failed compile left files behind: %v", left)
	}
}

func TestEvalWritesOutput(t *testing.T) {
	model := exampleOnDisk(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "x.npy")
	x := interp.Random([]int{1, 3, 32, 32}, 7)
	if err := os.WriteFile(in, tensorfile.EncodeNPY(x.Shape, x.Data), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "y.npy")
	if code, _, stderr := cli("eval", model, "--input", in, "-o", out); code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	got, err := tensorfile.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	g, err := onnx.Load(model, onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := interp.Run(g, []*interp.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if err := interp.Compare(interp.FromIR(got), want[0], 0, 0); err != nil {
		t.Errorf("y.npy differs from the interpreter: %v", err)
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range commands {
		code, stdout, _ := cli(cmd.name, "--help")
		if code != 0 || !strings.Contains(stdout, "usage: cnnc "+cmd.name) {
			t.Errorf("cnnc %s --help: exit %d, stdout %q", cmd.name, code, stdout)
		}
	}
	if code, stdout, _ := cli("--help"); code != 0 || !strings.Contains(stdout, "inspect") {
		t.Errorf("cnnc --help: exit %d, stdout %q", code, stdout)
	}
}

// TestCompileDeterministic: the same model and flags give byte-identical
// files, at -O2 and in fp16 too.
func TestCompileDeterministic(t *testing.T) {
	if _, err := codegen.FindBackend(); err != nil {
		t.Skip(err)
	}
	model := exampleOnDisk(t)
	for _, flags := range [][]string{{"-O2"}, {"-O0"}, {"-O2", "--precision", "fp16"}, {"-O2", "--precision", "fp16", "--target", "sm_90a"}} {
		var files [2][3][]byte
		for run := range 2 {
			ptx := filepath.Join(t.TempDir(), "m.ptx")
			if code, _, stderr := cli(append([]string{"compile", model, "-o", ptx}, flags...)...); code != 0 {
				t.Fatalf("compile %v: %s", flags, stderr)
			}
			plan, weights := artifact.Paths(ptx)
			for i, p := range []string{ptx, plan, weights} {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				files[run][i] = b
			}
		}
		for i := range 3 {
			if !bytes.Equal(files[0][i], files[1][i]) {
				t.Errorf("compile %v: file %d differs between two runs", flags, i)
			}
		}
	}
}

// gemmKernelKey is the key of the first GEMM kernel with K >= minK of the
// model's fp16 -O2 plan on the H100 profile.
func gemmKernelKey(t *testing.T, model string, minK int) string {
	t.Helper()
	g, err := onnx.Load(model, onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := costmodel.Lookup("h100")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passes.Run(g, passes.Options{OptLevel: 2, Profile: prof, Precision: "fp16"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range passes.Kernels(g) {
		if _, _, kk, _ := costmodel.GemmShape(k.Anchor); costmodel.IsGemmAnchor(k.Anchor) && kk >= minK {
			return passes.KernelKey(k)
		}
	}
	t.Fatalf("the example model has no GEMM kernel with K >= %d", minK)
	return ""
}

// TestCompileTuned: a tuning file's schedule for a kernel (named by its
// ONNX nodes) replaces the cost model's choice, and the report says so.
func TestCompileTuned(t *testing.T) {
	if _, err := codegen.FindBackend(); err != nil {
		t.Skip(err)
	}
	model := exampleOnDisk(t)
	key := gemmKernelKey(t, model, 32)
	// Not the cost model's pick for this model (it takes 32x32 tiles).
	tile := costmodel.Tile{BM: 64, BN: 64, BK: 32, TM: 32, TN: 16}
	tuning := bench.Tuning{Model: "tiny.onnx", Batch: 1, Precision: "fp16",
		Kernels: []bench.TunedKernel{{Key: key, Tile: tile.Ints(), SplitK: 1}}}
	path := filepath.Join(t.TempDir(), "tiny.tune.json")
	if err := tuning.Write(path); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli("compile", model, "--precision", "fp16", "--tuned", path, "--report", "-o", filepath.Join(t.TempDir(), "m.ptx"))
	if code != 0 {
		t.Fatalf("compile --tuned: %s", stderr)
	}
	want := fmt.Sprintf("tile=%d,%d,%d,%d,%d", tile.BM, tile.BN, tile.BK, tile.TM, tile.TN)
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "tuned tile") {
			n++
			if !strings.Contains(line, want) || !strings.Contains(line, strings.Split(key, "+")[0]) {
				t.Errorf("tuned decision %q, want %s on %s", line, want, key)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d tuned decisions in the report, want 1:\n%s", n, out)
	}
}

// TestTuneScore: `tune --score` ranks a tuning file's measured schedules
// without a GPU: the cost model's favourite of two is the faster one
// here, and a file none of whose kernels is in the model is a one-line
// error.
func TestTuneScore(t *testing.T) {
	model := exampleOnDisk(t)
	key := gemmKernelKey(t, model, 0)
	// The model's own tile, measured faster than the 256x128 one.
	small, large := "[k0 tile=32,32,32,16,8]", "[k0 tile=256,128,32,64,64]"
	tuning := bench.Tuning{Model: "tiny.onnx", Batch: 1, Precision: "fp16", Target: "sm_90a",
		Kernels: []bench.TunedKernel{{Key: key, Kernel: "k0_conv3x3", Tile: []int{32, 32, 32, 16, 8}, SplitK: 1,
			Tried: map[string]float64{small: 3, large: 9}}}}
	path := filepath.Join(t.TempDir(), "tiny.tune.json")
	if err := tuning.Write(path); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli("tune", model, "--score", path)
	if code != 0 || !strings.Contains(out, "1 kernels, 2 measured schedules; its favourites measure 3.0 us, the fastest 3.0 us (1.00x)") {
		t.Errorf("tune --score: exit %d, %q, %q", code, out, stderr)
	}
	if code, _, stderr := cli("tune", model, "--score", path, "--batch", "8"); code != 2 || !strings.Contains(stderr, "--score takes the batch") {
		t.Errorf("tune --score --batch 8: exit %d, %q", code, stderr)
	}
	tuning.Kernels[0].Key = "no such layer"
	if err := tuning.Write(path); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli("tune", model, "--score", path); code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "no kernel of the tuning file") {
		t.Errorf("tune --score with no matching kernel: exit %d, %q", code, stderr)
	}
}

// TestNASPredictAndMerge: two shards of a sweep predict without a GPU and
// merge into the whole sample.
func TestNASPredictAndMerge(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	for i, out := range []string{a, b} {
		shard := fmt.Sprintf("%d/2", i+1)
		if code, _, stderr := cli("nas", "--samples", "12", "--shard", shard, "-o", out); code != 0 {
			t.Fatalf("nas --shard %s: %s", shard, stderr)
		}
	}
	merged := filepath.Join(dir, "m.jsonl")
	code, stdout, stderr := cli("nas", "merge", a, b, "-o", merged)
	if code != 0 || !strings.Contains(stdout, "12 candidates predicted, 0 measured") {
		t.Fatalf("nas merge: exit %d, %s %s", code, stdout, stderr)
	}
	if code, _, stderr := cli("nas", "--shard", "3/2"); code != exitBadInput || !strings.Contains(stderr, "want i/N") {
		t.Errorf("nas --shard 3/2: exit %d, %s", code, stderr)
	}
}
