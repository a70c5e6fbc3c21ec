package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"cnnc/artifact"
	"cnnc/codegen"
	"cnnc/internal/tensorfile"
)

func runCompile(args []string, stdout io.Writer) error {
	fs := newFlags("compile", "compile model.onnx -o model.ptx [--batch N] [--target sm_80] [--emit-llvm]", stdout)
	var lf loadFlags
	lf.register(fs)
	out := fs.String("o", "", "the PTX `file` to write; model.plan.json and model.weights are written beside it (default: the model's name with .ptx)")
	target := fs.String("target", codegen.DefaultTarget, "GPU architecture: sm_80, sm_86, sm_89 or sm_90 (sm_80 PTX is JIT-compiled for newer cards)")
	emitLLVM := fs.Bool("emit-llvm", false, "also write the LLVM IR module beside the PTX (model.ll)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return badInputf("want one model file, got %d arguments; see 'cnnc compile --help'", len(pos))
	}
	if _, err := codegen.LookupTarget(*target); err != nil {
		return badInput(err)
	}
	ptxPath := *out
	if ptxPath == "" {
		ptxPath = strings.TrimSuffix(pos[0], filepath.Ext(pos[0])) + ".ptx"
	}
	start := time.Now()
	g, _, err := loadBinding(pos[0], lf, nil)
	if err != nil {
		return err
	}
	res, err := codegen.Compile(g, codegen.Options{Target: *target, Model: filepath.Base(pos[0])})
	if errors.Is(err, codegen.ErrUnsupported) {
		return badInput(err)
	}
	if err != nil {
		return err
	}
	if err := writeArtifact(ptxPath, res, *emitLLVM); err != nil {
		return err
	}
	p := res.Plan
	fmt.Fprintf(stdout, "compiled %s for %s in %.2fs: %d kernels, %.3f GFLOPs, arena %.1f MiB, weights %.1f MiB\n",
		pos[0], p.Target, time.Since(start).Seconds(), len(p.Launches), float64(p.FLOPs)/1e9,
		float64(p.Arena)/(1<<20), float64(p.Weights.Bytes)/(1<<20))
	fmt.Fprintf(stdout, "wrote %s\n", ptxPath)
	return nil
}

// writeArtifact writes model.ptx, model.plan.json and model.weights (and
// model.ll) all or nothing: each goes to a temporary file first and the
// renames happen only once every write succeeded.
func writeArtifact(ptxPath string, res *codegen.Result, emitLLVM bool) error {
	planPath, weightsPath := artifact.Paths(ptxPath)
	res.Plan.PTX = filepath.Base(ptxPath)
	res.Plan.Weights.File = filepath.Base(weightsPath)
	plan, err := res.Plan.Encode()
	if err != nil {
		return err
	}
	paths := []string{ptxPath, planPath, weightsPath}
	data := [][]byte{res.PTX, plan, res.Weights}
	if emitLLVM {
		paths = append(paths, strings.TrimSuffix(ptxPath, filepath.Ext(ptxPath))+".ll")
		data = append(data, res.LLVM)
	}
	return tensorfile.WriteFilesAtomic(paths, data)
}
