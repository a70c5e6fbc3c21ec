package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cnnc/artifact"
	"cnnc/codegen"
	"cnnc/internal/tensorfile"
	"cnnc/ir/interp"
	"cnnc/runtime/cuda"
	"cnnc/runtime/runtimetest"
)

// gpuPresent reports whether cuda.Open(0) works here.
func gpuPresent(t *testing.T) bool {
	t.Helper()
	d, err := cuda.Open(0)
	if err == nil {
		d.Close()
		return true
	}
	if !errors.Is(err, cuda.ErrNoDriver) {
		t.Fatalf("cuda.Open: %v", err)
	}
	return false
}

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	m, err := runtimetest.WriteVectorAddModel(dir, 512, 1)
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong.npy")
	if err := os.WriteFile(wrong, tensorfile.EncodeNPY([]int{2, 256}, make([]float32, 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if _, err := runtimetest.WriteVectorAddModel(other, 512, 2); err != nil { // same files, other weights
		t.Fatal(err)
	}
	mixed := filepath.Join(t.TempDir(), "model.ptx")
	plan, weights := artifact.Paths(mixed)
	otherPlan, _ := artifact.Paths(filepath.Join(other, "model.ptx"))
	copyFile(t, m.PTXPath, mixed)
	copyFile(t, otherPlan, plan)
	if err := os.WriteFile(weights, runtimetest.Float32Bytes(m.Weights), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "want one compiled model"},
		{[]string{"run", m.PTXPath, "--iters", "0"}, "want iters >= 1"},
		{[]string{"run", filepath.Join(dir, "missing.ptx")}, "missing.ptx"},
		{[]string{"run", mixed}, "SHA-256"},
		{[]string{"run", m.PTXPath, "--input", wrong}, `input "x" has shape [2 256], the model wants [512]`},
		{[]string{"run", m.PTXPath, "--input", "nosuch=" + wrong}, "the model has no input of that name"},
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
	plain, _ := artifact.Paths(m.PTXPath)
	if err := os.WriteFile(plain, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli("run", m.PTXPath); code != exitBadInput || !strings.Contains(stderr, "plan format 0") {
		t.Errorf("run with an empty plan: exit %d, stderr %q", code, stderr)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunVectorAdd: without a GPU, one line and exit 1; with one, the
// outputs match the CPU and -o writes them.
func TestRunVectorAdd(t *testing.T) {
	dir := t.TempDir()
	m, err := runtimetest.WriteVectorAddModel(dir, 1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "y.npy")
	code, stdout, stderr := cli("run", m.PTXPath, "--seed", "4", "-o", out, "--iters", "5", "--warmup", "1")
	if !gpuPresent(t) {
		if code != exitFailure || !strings.HasPrefix(stderr, "cnnc run: no NVIDIA GPU driver found (") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("without a GPU: exit %d, stderr %q; want exit 1 and one line", code, stderr)
		}
		return
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"device 0: ", "y: f32[1024]", "end-to-end (kernel launches): median "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	got, err := tensorfile.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	x := interp.Random([]int{1024}, 4) // what 'cnnc eval --seed 4' feeds the first input
	want := &interp.Tensor{Shape: []int{1024}, Data: m.Want(x.Data)}
	if err := interp.Compare(interp.FromIR(got), want, 0, 0); err != nil {
		t.Errorf("y.npy: %v", err)
	}
	t.Log(stdout)
}

// TestRunCompiledExampleMatchesEval compiles the example model, runs it on
// the GPU and compares with the interpreter on the same seeded input.
func TestRunCompiledExampleMatchesEval(t *testing.T) {
	if !gpuPresent(t) {
		t.Skip("no GPU")
	}
	if _, err := codegen.FindBackend(); err != nil {
		t.Skipf("cannot compile here: %v", err)
	}
	model := exampleOnDisk(t)
	dir := t.TempDir()
	ptx := filepath.Join(dir, "tiny.ptx")
	if code, _, stderr := cli("compile", model, "-o", ptx); code != 0 {
		t.Fatalf("compile: exit %d: %s", code, stderr)
	}
	gpuOut, cpuOut := filepath.Join(dir, "gpu.npy"), filepath.Join(dir, "cpu.npy")
	if code, stdout, stderr := cli("run", ptx, "--seed", "9", "-o", gpuOut, "--graph", "--iters", "10"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	} else {
		t.Log(stdout)
	}
	if code, _, stderr := cli("eval", model, "--seed", "9", "-o", cpuOut); code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	got, err := tensorfile.Read(gpuOut)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tensorfile.Read(cpuOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := interp.Compare(interp.FromIR(got), interp.FromIR(want), 1e-3, 1e-5); err != nil {
		t.Errorf("GPU output differs from 'cnnc eval': %v", err)
	}
}
