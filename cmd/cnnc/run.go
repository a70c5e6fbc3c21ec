package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"cnnc/artifact"
	"cnnc/bench"
	"cnnc/internal/tensorfile"
	"cnnc/ir"
	"cnnc/ir/interp"
	cnncrt "cnnc/runtime"
	"cnnc/runtime/cuda"
	"cnnc/runtime/nvml"
)

func runRun(args []string, stdout io.Writer) error {
	fs := newFlags("run", "run model.ptx [--input x.npy | --input name=path ...] [--seed S] [-o y.npy] [--expect ref.npy] [--iters N] [--warmup N] [--graph] [--device I] [--json out.json]", stdout)
	var inputs inputList
	fs.Var(&inputs, "input", "an input tensor, `path` (.npy or ONNX TensorProto .pb) for the first input or name=path; repeatable. Inputs not given are random, as in 'cnnc eval'")
	seed := fs.Uint64("seed", 1, "seed of the random inputs (uniform in [-1, 1)), the same data 'cnnc eval' uses")
	out := fs.String("o", "", "write the outputs as .npy: `path` for one output, path_<name>.npy for each of several")
	expect := fs.String("expect", "", "a reference .npy for the first output: print the relative L2 error and fail above --tol")
	tol := fs.Float64("tol", 0, "largest relative L2 error --expect accepts (default by the plan's precision: 1e-4 for fp32, 1e-2 for fp16)")
	iters := fs.Int("iters", 100, "timed iterations of the whole model")
	warmup := fs.Int("warmup", 10, "untimed iterations before timing")
	graph := fs.Bool("graph", false, "time the launch list captured as one CUDA graph instead of kernel by kernel launches")
	device := fs.Int("device", 0, "CUDA device ordinal")
	jsonOut := fs.String("json", "", "also write the card, plan summary, error and timing as JSON to `file`")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return badInputf("want one compiled model (model.ptx), got %d arguments; see 'cnnc run --help'", len(pos))
	}
	if *iters < 1 || *warmup < 0 || *device < 0 {
		return badInputf("--iters %d --warmup %d --device %d: want iters >= 1, warmup >= 0, device >= 0", *iters, *warmup, *device)
	}
	given, err := readInputs(inputs)
	if err != nil {
		return err
	}
	var ref *ir.Tensor
	if *expect != "" {
		if ref, err = tensorfile.Read(*expect); err != nil {
			return badInputf("--expect %s: %v", *expect, err)
		}
	}
	art, err := cnncrt.ReadArtifact(pos[0])
	if errors.Is(err, cnncrt.ErrBadArtifact) {
		return badInput(err)
	} else if err != nil {
		return err
	}
	plan := art.Plan
	xs, err := lineUpInputs(planSpecs(plan.Inputs), given, nil, *seed)
	if err != nil {
		return err
	}
	if ref != nil && (len(plan.Outputs) == 0 || !ir.ShapeEqual(ref.Shape, plan.Outputs[0].Shape)) {
		return badInputf("--expect %s has shape %v, the model's first output is %v", *expect, ref.Shape, plan.Outputs[0].Shape)
	}

	dev, err := cuda.Open(*device)
	if err != nil {
		return err
	}
	defer dev.Close()
	card, err := describeDevice(dev)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, card)
	exe, err := cnncrt.LoadArtifact(dev, art)
	if err != nil {
		return err
	}
	defer exe.Close()
	fmt.Fprintf(stdout, "%s: %s, batch %d, %d launches, arena %s, weights %s\n", filepath.Base(art.PTXPath),
		plan.Precision, plan.Batch, len(plan.Launches), formatBytes(plan.Arena), formatBytes(plan.Weights.Bytes))
	if running, of := exe.Persistent(); of > 0 {
		fmt.Fprintf(stdout, "persistent GEMMs: %d of %d run persistent on this card, the others one tile a block\n", running, of)
	}
	rep := runReport{Card: card, Model: plan.Model, PTX: art.PTXPath, Precision: plan.Precision, Batch: plan.Batch,
		Launches: len(plan.Launches), FLOPs: plan.FLOPs, Graph: *graph}
	var mismatch error
	in := make([][]float32, len(xs))
	for i, x := range xs {
		in[i] = x.Data
	}
	raw, err := exe.Run(in)
	if err != nil {
		return err
	}
	ys := make([]*interp.Tensor, len(raw))
	for i, o := range plan.Outputs {
		ys[i] = &interp.Tensor{Shape: o.Shape, Data: raw[i]}
		fmt.Fprintf(stdout, "%s: %s\n", o.Name, summarize(ys[i]))
	}
	if *out != "" {
		if err := writeTensors(*out, planSpecs(plan.Outputs), ys); err != nil {
			return err
		}
	}
	if ref != nil {
		if *tol == 0 {
			*tol = 1e-4
			if plan.Precision == "fp16" {
				*tol = 1e-2
			}
		}
		e := interp.RelL2(ys[0], interp.FromIR(ref))
		rep.RelL2 = &e
		fmt.Fprintf(stdout, "relative L2 error vs %s: %.3g (tolerance %.3g)\n", *expect, e, *tol)
		if !(e <= *tol) {
			mismatch = fmt.Errorf("output %s differs from %s: relative L2 error %.3g > %.3g", plan.Outputs[0].Name, *expect, e, *tol)
		}
	}

	t, err := exe.TimeEndToEnd(*warmup, *iters, *graph)
	if err != nil {
		return err
	}
	busyPct, err := bench.BusyWhile(dev, func() error {
		_, err := exe.TimeEndToEnd(0, *iters, *graph)
		return err
	})
	if err != nil {
		return err
	}
	busy := ""
	if busyPct >= 0 {
		busy = fmt.Sprintf(", NVML GPU busy %.0f%%", busyPct)
	}
	mode := "kernel launches"
	if *graph {
		mode = "CUDA graph"
	}
	fmt.Fprintf(stdout, "end-to-end (%s): median %.4f ms, min %.4f ms, p90 %.4f ms over %d iterations", mode, t.Median, t.Min, t.P90, t.Iters)
	if plan.FLOPs > 0 && t.Median > 0 {
		fmt.Fprintf(stdout, ", %.3g TFLOP/s", float64(plan.FLOPs)/(t.Median*1e-3)/1e12)
	}
	fmt.Fprintln(stdout, busy)
	rep.MedianMs, rep.MinMs, rep.P90Ms, rep.Iters, rep.Busy = t.Median, t.Min, t.P90, t.Iters, strings.TrimPrefix(busy, ", ")
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := tensorfile.WriteFileAtomic(*jsonOut, append(data, '\n')); err != nil {
			return err
		}
	}
	return mismatch
}

// runReport is what `cnnc run --json` writes.
type runReport struct {
	Card      string   `json:"card"`
	Model     string   `json:"model"`
	PTX       string   `json:"ptx"`
	Precision string   `json:"precision"`
	Batch     int      `json:"batch"`
	Launches  int      `json:"launches"`
	FLOPs     int64    `json:"model_flops"`
	Graph     bool     `json:"graph"`
	RelL2     *float64 `json:"rel_l2,omitempty"`
	MedianMs  float64  `json:"median_ms"`
	MinMs     float64  `json:"min_ms"`
	P90Ms     float64  `json:"p90_ms"`
	Iters     int      `json:"iters"`
	Busy      string   `json:"nvml_busy,omitempty"`
}

// planSpecs are a plan's inputs or outputs as the CLI names them.
func planSpecs(refs []artifact.TensorRef) []tensorSpec {
	specs := make([]tensorSpec, len(refs))
	for i, r := range refs {
		specs[i] = tensorSpec{r.Name, r.Shape}
	}
	return specs
}

// describeDevice is one line naming the card, its compute capability, SM
// count, memory and, where NVML answers, its SM clock.
func describeDevice(dev *cuda.Device) (string, error) {
	name, err := dev.Name()
	if err != nil {
		return "", err
	}
	major, minor, err := dev.ComputeCapability()
	if err != nil {
		return "", err
	}
	sms, err := dev.Attribute(cuda.AttrMultiprocessorCount)
	if err != nil {
		return "", err
	}
	mem, err := dev.TotalMem()
	if err != nil {
		return "", err
	}
	line := fmt.Sprintf("device %d: %s, sm_%d%d, %d SMs, %s", dev.Ordinal, name, major, minor, sms, formatBytes(mem))
	nd, err := bench.NVMLDevice(dev)
	if err != nil {
		return line + ", SM clock unknown: " + err.Error(), nil
	}
	defer nvml.Shutdown()
	clock, err := nd.SMClock()
	if err != nil {
		return line + ", SM clock unknown: " + err.Error(), nil
	}
	line += fmt.Sprintf(", SM clock %d MHz", clock)
	if top, err := nd.MaxSMClock(); err == nil {
		line += fmt.Sprintf(" (max %d)", top)
	}
	return line, nil
}

// formatBytes prints a size in B, KiB, MiB or GiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for v >= unit && i < len(suffix)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, suffix[i])
}
