package main

import (
	"cnnc/ir"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"cnnc/bench"
	"cnnc/codegen"
	"cnnc/passes"
	"cnnc/passes/costmodel"
)

// stringList collects a repeatable, comma-separable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// optFlags are the optimization flags compile and bench share.
type optFlags struct {
	o0, o2      bool
	disable     stringList
	dumpAfter   stringList
	verify      bool
	profile     string
	calibration string
	layout      string
	tuned       string
}

func (o *optFlags) register(fs *flagSet) {
	fs.BoolVar(&o.o0, "O0", false, "required passes only: one kernel per layer (the baseline)")
	fs.BoolVar(&o.o2, "O2", false, "every pass (the default)")
	fs.Var(&o.disable, "disable", "skip the named `pass` (repeatable; see --help for the pipeline)")
	fs.Var(&o.dumpAfter, "dump-after", "print the IR after the named `pass`, or all")
	fs.BoolVar(&o.verify, "verify", false, "run the IR verifier after every pass")
	fs.StringVar(&o.profile, "profile", "", "device `profile` for the cost model: "+strings.Join(costmodel.ProfileNames(), ", ")+" (default: by --target)")
	fs.StringVar(&o.calibration, "calibration", "", "a calibration `file` written by 'cnnc bench --calibrate' (overrides --profile)")
	fs.StringVar(&o.layout, "layout", "auto", "choose-layout's policy: auto (the cost model chooses), nchw, or nhwc (every value that can be channels last is)")
	fs.StringVar(&o.tuned, "tuned", "", "a tuning `file` from 'cnnc tune': its measured GEMM schedules replace the cost model's choice (same model, batch and precision)")
}

// level is the optimization level the flags ask for.
func (o *optFlags) level() (int, error) {
	if o.o0 && o.o2 {
		return 0, badInputf("-O0 and -O2 together")
	}
	if o.o0 {
		return 0, nil
	}
	return 2, nil
}

// deviceProfile resolves --calibration, --profile or the target's profile.
func (o *optFlags) deviceProfile(target string) (costmodel.Profile, error) {
	if o.calibration != "" {
		p, err := costmodel.Load(o.calibration)
		return p, badInput(err)
	}
	name := o.profile
	if name == "" {
		name = target
	}
	p, err := costmodel.Lookup(name)
	return p, badInput(err)
}

func (o *optFlags) passOptions(target string, dump io.Writer) (passes.Options, int, error) {
	lvl, err := o.level()
	if err != nil {
		return passes.Options{}, 0, err
	}
	prof, err := o.deviceProfile(target)
	if err != nil {
		return passes.Options{}, 0, err
	}
	for _, n := range append(append([]string{}, o.disable...), o.dumpAfter...) {
		if _, ok := passes.LookupPass(n); !ok && n != "all" {
			return passes.Options{}, 0, badInputf("unknown pass %q, want one of %s", n, strings.Join(passes.PassNames(), ", "))
		}
	}
	layout := o.layout
	switch layout {
	case "auto":
		layout = ""
	case passes.LayoutNCHW, ir.LayoutNHWC:
	default:
		return passes.Options{}, 0, badInputf("--layout %q, want auto, nchw or nhwc", o.layout)
	}
	popt := passes.Options{OptLevel: lvl, Disable: o.disable, DumpAfter: o.dumpAfter, Dump: dump, Verify: o.verify, Profile: prof, Layout: layout}
	if o.tuned != "" {
		t, err := bench.ReadTuning(o.tuned)
		if err != nil {
			return passes.Options{}, 0, badInputf("--tuned: %v", err)
		}
		popt.Tuned = t.Schedules()
	}
	return popt, lvl, nil
}

func runCompile(args []string, stdout io.Writer) error {
	fs := newFlags("compile", "compile model.onnx -o model.ptx [--batch N] [--target sm_80] [--precision fp32|fp16] [-O0|-O2] [--layout auto|nchw|nhwc] [--tuned FILE] [--report] [--dump-after PASS|all] [--disable PASS] [--verify] [--emit-llvm]", stdout)
	var lf loadFlags
	lf.register(fs)
	var of optFlags
	of.register(fs)
	out := fs.String("o", "", "the PTX `file` to write; model.plan.json and model.weights are written beside it (default: the model's name with .ptx)")
	target := fs.String("target", codegen.DefaultTarget, "GPU architecture: sm_80, sm_86, sm_89, sm_90, or sm_90a (Hopper only: tensor-core tiles of one warpgroup per 64 rows run on wgmma; sm_80 PTX is JIT-compiled for newer cards)")
	emitLLVM := fs.Bool("emit-llvm", false, "also write the LLVM IR module beside the PTX (model.ll)")
	precision := fs.String("precision", defaultPrecision, "tensor storage: fp16 (half activations and weights, float arithmetic; GEMMs on the tensor cores), or fp32")
	report := fs.Bool("report", false, "print every fusion and tiling decision with its predicted gain, and the kernels")
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
	popt, lvl, err := of.passOptions(*target, stdout)
	if err != nil {
		return err
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
	if *precision != "fp32" && *precision != "fp16" {
		return badInputf("--precision %q, want fp32 or fp16", *precision)
	}
	res, pc, err := codegen.Build(g, codegen.Options{Target: *target, Model: filepath.Base(pos[0]), OptLevel: lvl, Precision: *precision}, popt)
	if errors.Is(err, codegen.ErrUnsupported) {
		return badInput(err)
	}
	if err != nil {
		return err
	}
	if err := res.Write(ptxPath, *emitLLVM); err != nil {
		return err
	}
	if *report {
		printCompileReport(stdout, res, pc, popt.Profile)
	}
	p := res.Plan
	fmt.Fprintf(stdout, "compiled %s at -O%d, %s, for %s in %.2fs: %d kernels, %.3f GFLOPs, arena %.1f MiB, weights %.1f MiB\n",
		pos[0], lvl, p.Precision, p.Target, time.Since(start).Seconds(), len(p.Launches), float64(p.FLOPs)/1e9,
		float64(p.Arena)/(1<<20), float64(p.Weights.Bytes)/(1<<20))
	fmt.Fprintf(stdout, "wrote %s\n", ptxPath)
	return nil
}

// printCompileReport lists the decisions and the predicted kernels.
func printCompileReport(w io.Writer, res *codegen.Result, pc *passes.Context, prof costmodel.Profile) {
	fmt.Fprintf(w, "decisions (cost model: %s):\n", prof.Name)
	for _, d := range pc.Decisions {
		fmt.Fprintf(w, "  %s\n", d)
	}
	if pc.Memory != nil {
		fmt.Fprintf(w, "plan-memory: arena %.1f MiB, %.1f MiB without reuse\n", float64(pc.Memory.Bytes)/(1<<20), float64(pc.Memory.Unshared)/(1<<20))
	}
	var total float64
	fmt.Fprintln(w, "kernels:")
	for _, l := range res.Plan.Launches {
		total += l.PredictedNs
		grid := fmt.Sprintf("%dx%dx%d", l.Grid[0], l.Grid[1], l.Grid[2])
		fmt.Fprintf(w, "  %-44s grid %-12s %8.1f us predicted  %s\n", l.Kernel, grid, l.PredictedNs/1e3, strings.Join(l.Ops, "+"))
	}
	fmt.Fprintf(w, "predicted end to end: %.1f us\n", total/1e3)
}
