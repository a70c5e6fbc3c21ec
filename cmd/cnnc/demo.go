package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"cnnc/codegen"
	"cnnc/runtime/cuda"
)

//go:generate go run cnnc/frontend/onnx/onnxbuild/internal/genexample example/tinyresnet.onnx

// exampleModel is a small ResNet-style CNN (basic residual blocks, a
// depthwise-separable block with ReLU6, pooling, a classifier) built by
// onnxbuild.TinyResNet with deterministic random weights.
//
//go:embed example/tinyresnet.onnx
var exampleModel []byte

// runDemo is the main job on the embedded example: inspect it, evaluate it
// on the CPU, compile it with the decisions reported, and on a GPU machine
// run it (checked against the interpreter) and bench -O0 against -O2.
func runDemo(args []string, stdout io.Writer) error {
	fs := newFlags("demo", "demo [--keep DIR]", stdout)
	keep := fs.String("keep", "", "write the example model and its compiled artifact into `DIR` instead of a temporary folder")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return badInputf("demo takes no arguments")
	}
	dir := *keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cnnc-demo"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	model := filepath.Join(dir, "tinyresnet.onnx")
	if err := os.WriteFile(model, exampleModel, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "== the example model (%s, %d bytes)\n", model, len(exampleModel))
	if err := runInspect([]string{"--no-ir", model}, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\n== evaluate on the CPU reference interpreter (random input, seed 1)")
	ref := filepath.Join(dir, "tinyresnet_cpu.npy")
	if err := runEval([]string{model, "-o", ref}, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\n== compile to PTX")
	if _, err := codegen.FindBackend(); err != nil {
		fmt.Fprintf(stdout, "skipped: %v\n", err)
		return nil
	}
	ptx := filepath.Join(dir, "tinyresnet.ptx")
	if err := runCompile([]string{model, "-o", ptx, "--report"}, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\n== run on the GPU, checked against the interpreter (same input)")
	dev, err := cuda.Open(0)
	if errors.Is(err, cuda.ErrNoDriver) {
		fmt.Fprintf(stdout, "skipped: %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	dev.Close()
	if err := runRun([]string{ptx, "--expect", ref, "--iters", "100"}, stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\n== bench: -O0 against -O2 on the GPU")
	return runBench([]string{model, "--iters", "30"}, stdout)
}
