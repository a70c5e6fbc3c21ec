package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"cnnc/bench"
	"cnnc/codegen"
	"cnnc/internal/tensorfile"
	"cnnc/passes/costmodel"
	"cnnc/runtime/cuda"
)

func runBench(args []string, stdout io.Writer) error {
	fs := newFlags("bench", "bench model.onnx [--batch N] [--iters N] [--precision fp32|fp16] [--tune | --tuned FILE] [--baseline cudnn] [--kernels] [--json out.json] [--md out.md] [--profile NAME | --calibration FILE] | bench --calibrate [-o calibration.json] | bench --fit report.json... [--calibration FILE] [-o calibration.json]", stdout)
	batch := fs.Int("batch", 1, "batch size")
	iters := fs.Int("iters", 50, "timed iterations of each measurement")
	warmup := fs.Int("warmup", 10, "untimed iterations first")
	seed := fs.Uint64("seed", 1, "seed of the random input")
	jsonOut := fs.String("json", "", "write the report as JSON to `file`")
	mdOut := fs.String("md", "", "write the report as Markdown to `file` (it is printed either way)")
	profile := fs.String("profile", "", "cost-model profile (default: the card's, by name)")
	calibration := fs.String("calibration", "", "a calibration `file` from --calibrate")
	calibrate := fs.Bool("calibrate", false, "measure the card's ceilings and the GEMM core's efficiency and write a calibration file")
	fit := fs.Bool("fit", false, "fit the cost model to the launches measured in the JSON reports given as arguments and write a calibration file (no GPU needed)")
	out := fs.String("o", "calibration.json", "with --calibrate or --fit: the calibration `file` to write")
	device := fs.Int("device", 0, "CUDA device ordinal")
	precision := fs.String("precision", defaultPrecision, "tensor storage of both variants: fp16 or fp32")
	peersFile := fs.String("peers", "", "a JSON-lines `file` of PyTorch measurements (bench/peers/torchvision_models.py peers) to report beside cnnc")
	kernels := fs.Bool("kernels", false, "also print the kernel benchmark: every -O2 GEMM-core kernel, largest first, against the measured peak of its unit (tensor cores or FP32)")
	layout := fs.String("layout", "auto", "choose-layout's policy at -O2: auto, nchw, or nhwc (every value that can be channels last is: to measure those kernels)")
	target := fs.String("target", "auto", "codegen target: auto (the card's own; sm_90a on Hopper: its wgmma core), or one of compile's --target")
	tune := fs.Bool("tune", false, "first tune the model's GEMM schedules on this card (as 'cnnc tune'), then bench -O2 with them")
	tunedFile := fs.String("tuned", "", "a tuning `file` from 'cnnc tune': -O2 takes its measured GEMM schedules")
	baseline := fs.String("baseline", "", "also run the model layer by layer with `lib` (cudnn: libcudnn.so.9 from $CNNC_CUDNN, the loader path or Python's nvidia/cudnn), checked and timed alike")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if *fit {
		return fitReports(pos, *calibration, *out, stdout)
	}
	if *calibrate != (len(pos) == 0) || len(pos) > 1 {
		return badInputf("want one model file, or --calibrate with none; see 'cnnc bench --help'")
	}
	if *precision != "fp32" && *precision != "fp16" {
		return badInputf("--precision %q, want fp32 or fp16", *precision)
	}
	lay := *layout
	switch lay {
	case "auto":
		lay = ""
	case "nchw", "nhwc":
	default:
		return badInputf("--layout %q, want auto, nchw or nhwc", *layout)
	}
	if *baseline != "" && *baseline != "cudnn" {
		return badInputf("--baseline %q, want cudnn", *baseline)
	}
	if *batch < 1 || *iters < 1 || *warmup < 0 {
		return badInputf("--batch %d --iters %d --warmup %d: want batch >= 1, iters >= 1, warmup >= 0", *batch, *iters, *warmup)
	}
	dev, err := cuda.Open(*device)
	if err != nil {
		return err
	}
	defer dev.Close()
	card, err := dev.Name()
	if err != nil {
		return err
	}
	prof, err := cardProfile(optFlags{profile: *profile, calibration: *calibration}, dev)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cnnc-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *calibrate {
		p, c, err := bench.Calibrate(dev, prof, dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: FP32 %.2f TFLOP/s, fp16 tensor cores %.0f TFLOP/s, DRAM %.0f GB/s, launch %.2f us, GEMM core at %.0f%% (4x4 tile) and %.0f%% (8x8) of FP32 peak: issue efficiency %.2f, shared load %.2f FMA-slots; tensor-core core at %.0f%% of its peak\n",
			card, c.FP32TFLOPS, c.FP16TCTFLOPS, c.DRAMGBs, c.LaunchUs, 100*c.GemmEff4x4, 100*c.GemmEff8x8, p.GemmIssueEff, p.SharedLoadInstr, 100*c.TensorCoreEff)
		if err := p.Save(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *out)
		return nil
	}
	var progress io.Writer
	if f, ok := stdout.(*os.File); ok && bench.IsTerminal(f) {
		progress = os.Stderr
	}
	tgt, err := benchTarget(*target, dev)
	if err != nil {
		return err
	}
	bopt := bench.Options{Model: pos[0], Batch: *batch, Iters: *iters, Warmup: *warmup, Seed: *seed,
		Profile: prof, Dir: dir, Progress: progress, Precision: *precision, Baseline: *baseline, Layout: lay, Target: tgt}
	var tuning *bench.Tuning
	switch {
	case *tune && *tunedFile != "":
		return badInputf("--tune and --tuned together")
	case *tune:
		if tuning, err = bench.Tune(dev, bopt); err != nil {
			return err
		}
		printTuning(stdout, tuning)
	case *tunedFile != "":
		if tuning, err = bench.ReadTuning(*tunedFile); err != nil {
			return badInputf("--tuned: %v", err)
		}
	}
	if tuning != nil {
		bopt.Tuned = tuning.Schedules()
	}
	rep, err := bench.Run(dev, bopt)
	if err != nil {
		return err
	}
	if *peersFile != "" {
		peers, err := bench.ReadPeers(*peersFile)
		if err != nil {
			return badInputf("--peers: %v", err)
		}
		rep.AddPeers(peers)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if *kernels {
		md.WriteString("\n")
		rep.WriteKernels(&md)
	}
	stdout.Write(md.Bytes())
	if *mdOut != "" {
		if err := tensorfile.WriteFileAtomic(*mdOut, md.Bytes()); err != nil {
			return err
		}
	}
	if *jsonOut != "" {
		var js bytes.Buffer
		if err := rep.WriteJSON(&js); err != nil {
			return err
		}
		if err := tensorfile.WriteFileAtomic(filepath.Clean(*jsonOut), js.Bytes()); err != nil {
			return err
		}
	}
	// fp32 kernels land near 1e-6 of the interpreter; fp16 storage rounds
	// every tensor to 11 bits.
	tol := 1e-4
	if *precision == "fp16" {
		tol = 1e-2
	}
	for _, v := range rep.Variants {
		if !(v.RelL2 <= tol) {
			return fmt.Errorf("-O%d output differs from the interpreter: relative L2 error %.3g > %.3g", v.OptLevel, v.RelL2, tol)
		}
	}
	return nil
}

// fitReports is `cnnc bench --fit`: it refits a profile (the calibration
// given, else the first report's) to the reports' measured launches.
func fitReports(paths []string, calibration, out string, stdout io.Writer) error {
	if len(paths) == 0 {
		return badInputf("--fit wants bench JSON reports as arguments")
	}
	var reports []*bench.Report
	for _, p := range paths {
		rs, err := bench.ReadReports(p)
		if err != nil {
			return badInput(err)
		}
		reports = append(reports, rs...)
	}
	base := reports[0].Profile
	if calibration != "" {
		p, err := costmodel.Load(calibration)
		if err != nil {
			return badInput(err)
		}
		base = p
	}
	fitted, err := bench.FitReports(stdout, base, reports)
	if err != nil {
		return badInput(err)
	}
	if err := fitted.Save(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fitted: GEMM issue %.2f, shared load %.2f, stage %.1f, K step %.1f, store %.1f, depthwise tap %.1f (FMA-slots); memory %.0f%%, launch %.2f us, gap %.2f us, K-step latency %.2f us\nwrote %s\n",
		fitted.GemmIssueEff, fitted.SharedLoadInstr, fitted.StageInstr, fitted.SliceInstr, fitted.StoreInstr, fitted.DepthwiseTapInstr,
		100*fitted.MemEff, fitted.LaunchUs, fitted.GapUs, fitted.SliceLatencyUs, out)
	return nil
}

// cardProfile is the cost-model profile a GPU command uses: --calibration
// or --profile if given, else the built-in profile of dev's card (h100
// without a device).
func cardProfile(of optFlags, dev *cuda.Device) (costmodel.Profile, error) {
	if of.calibration != "" || of.profile != "" {
		return of.deviceProfile("")
	}
	if dev == nil {
		return of.deviceProfile("h100")
	}
	card, err := dev.Name()
	if err != nil {
		return costmodel.Profile{}, err
	}
	p, err := bench.ProfileFor(card)
	return p, badInput(err)
}

// benchTarget resolves a --target flag: auto is the card's own.
func benchTarget(flag string, dev *cuda.Device) (string, error) {
	if flag != "auto" {
		_, err := codegen.LookupTarget(flag)
		return flag, badInput(err)
	}
	return bench.DeviceTarget(dev)
}
