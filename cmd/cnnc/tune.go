package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"cnnc/bench"
	"cnnc/codegen"
	"cnnc/frontend/onnx"
	"cnnc/passes"
	"cnnc/runtime/cuda"
)

// runTune is `cnnc tune`: measure every GEMM kernel of a model's -O2 plan
// on each candidate tile on this card and write the fastest schedules.
func runTune(args []string, stdout io.Writer) error {
	fs := newFlags("tune", "tune model.onnx [--batch N] [--precision fp32|fp16] [--iters N] [--calibration FILE] [-o model.tune.json] | tune model.onnx --score FILE [--profile NAME | --calibration FILE]", stdout)
	batch := fs.Int("batch", 1, "batch size")
	precision := fs.String("precision", defaultPrecision, "tensor storage: fp16 (tensor-core tiles) or fp32 (SIMT tiles)")
	iters := fs.Int("iters", 20, "timed runs of each candidate's kernels (the median counts)")
	warmup := fs.Int("warmup", 5, "untimed runs first")
	out := fs.String("o", "", "the tuning `file` to write (default: the model's name with .tune.json)")
	profile := fs.String("profile", "", "cost-model profile (default: the card's, by name)")
	calibration := fs.String("calibration", "", "a calibration `file` from 'cnnc bench --calibrate'")
	device := fs.Int("device", 0, "CUDA device ordinal")
	target := fs.String("target", "auto", "codegen target: auto (the card's own; sm_90a on Hopper: its wgmma core), or one of compile's --target")
	score := fs.String("score", "", "no GPU: score the cost model's ranking of the schedules a tuning `file` measured for this model (its batch, precision and target)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return badInputf("want one model file, got %d arguments; see 'cnnc tune --help'", len(pos))
	}
	if *score != "" {
		if *batch != 1 || *precision != defaultPrecision || *target != "auto" || *out != "" {
			return badInputf("--score takes the batch, precision and target from the tuning file; drop --batch, --precision, --target and -o")
		}
		return scoreTuning(stdout, pos[0], *score, optFlags{profile: *profile, calibration: *calibration})
	}
	if *precision != "fp32" && *precision != "fp16" {
		return badInputf("--precision %q, want fp32 or fp16", *precision)
	}
	if *batch < 1 || *iters < 1 || *warmup < 0 {
		return badInputf("--batch %d --iters %d --warmup %d: want batch >= 1, iters >= 1, warmup >= 0", *batch, *iters, *warmup)
	}
	path := *out
	if path == "" {
		path = strings.TrimSuffix(pos[0], ".onnx") + ".tune.json"
	}
	dev, err := cuda.Open(*device)
	if err != nil {
		return err
	}
	defer dev.Close()
	prof, err := cardProfile(optFlags{profile: *profile, calibration: *calibration}, dev)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cnnc-tune")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tgt, err := benchTarget(*target, dev)
	if err != nil {
		return err
	}
	t, err := bench.Tune(dev, bench.Options{Model: pos[0], Batch: *batch, Iters: *iters, Warmup: *warmup,
		Profile: prof, Dir: dir, Precision: *precision, Target: tgt})
	if err != nil {
		return err
	}
	printTuning(stdout, t)
	if err := t.Write(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return nil
}

// scoreTuning is `cnnc tune --score`: the model's -O2 graph at the tuning
// file's batch, precision and target, and how the cost model (the
// target's profile, or --profile or --calibration) ranks the schedules
// the file measured.
func scoreTuning(w io.Writer, model, file string, of optFlags) error {
	t, err := bench.ReadTuning(file)
	if err != nil {
		return badInputf("--score: %v", err)
	}
	tgt, err := codegen.LookupTarget(t.Target)
	if err != nil {
		return badInputf("--score: %s: %v", file, err)
	}
	prof, err := of.deviceProfile(t.Target)
	if err != nil {
		return err
	}
	prof.Wgmma = tgt.Hopper
	g, err := onnx.Load(model, onnx.Options{Batch: t.Batch})
	if err != nil {
		return badInput(err)
	}
	pc, err := passes.Run(g, passes.Options{OptLevel: 2, Precision: t.Precision, Profile: prof, Model: model})
	if err != nil {
		return err
	}
	s, err := bench.ScoreTuning(g, t, pc.Profile)
	if err != nil {
		return badInputf("--score: %v", err)
	}
	fmt.Fprintf(w, "cost model (%s) on %s (%s, batch %d, %s, %s): %d kernels, %d measured schedules; its favourites measure %.1f us, the fastest %.1f us (%.2fx); ln(predicted/measured) %.2f +- %.2f\n",
		prof.Name, file, t.Card, t.Batch, t.Precision, t.Target, s.Kernels, s.Candidates, s.PickedUs, s.BestUs, s.PickedUs/s.BestUs, s.LogErrMean, s.LogErrSD)
	return nil
}

// printTuning summarizes a tuning: totals, then the kernels it changed.
func printTuning(w io.Writer, t *bench.Tuning) {
	fmt.Fprintf(w, "tuned %s at batch %d, %s, on %s (%d MHz): %d GEMM kernels, %d candidate compiles in %.1f s; GEMM kernels %.1f us on the cost model's schedules, %.1f us tuned (%.2fx)\n",
		t.Model, t.Batch, t.Precision, t.Card, t.SMClockMHz, len(t.Kernels), t.Candidates, t.TuneS, t.CostModelUs, t.TunedUs, t.CostModelUs/t.TunedUs)
	for _, k := range t.Kernels {
		if k.Us < k.CostModelUs {
			fmt.Fprintf(w, "  %-40s %8.1f us -> %8.1f us  tile %v split %d (cost model: %s)\n", k.Kernel, k.CostModelUs, k.Us, k.Tile, k.SplitK, k.CostModel)
		}
	}
}
