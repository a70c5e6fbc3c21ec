package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"time"

	"cnnc/bench"
	"cnnc/internal/tensorfile"
	"cnnc/nas"
	"cnnc/passes/costmodel"
	"cnnc/runtime/cuda"
)

func runNAS(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "merge" {
		return runNASMerge(args[1:], stdout)
	}
	fs := newFlags("nas", "nas --samples N [--measure M] [--gpus N] [--kernels FILE] [--batch B] [--seed S] [--shard i/N] [--profile NAME | --calibration FILE] [-o results.jsonl] [--plots DIR] | nas merge results.jsonl... [--md summary.md] [--plots DIR]", stdout)
	samples := fs.Int("samples", 300, "candidates to sample and predict")
	measure := fs.Int("measure", 0, "candidates to time on the GPU: the predicted Pareto front, then a random sample")
	batch := fs.Int("batch", 1, "batch size")
	seed := fs.Uint64("seed", 1, "seed of the sample")
	shardFlag := fs.String("shard", "1/1", "`i/N`: this run's part of the sample (results of the parts merge with 'cnnc nas merge')")
	out := fs.String("o", "nas.jsonl", "the JSON-lines `file` of results")
	iters := fs.Int("iters", 30, "timed iterations per measured candidate")
	gpus := fs.Int("gpus", 0, "measure on the first `n` GPUs, one worker each (default: all)")
	kernels := fs.String("kernels", "", "write every measured candidate's per-kernel times, as bench reports one per line, to `file` (for 'cnnc bench --fit')")
	plots := fs.String("plots", "", "write PNG plots (FLOPs vs latency by utilization; predicted vs measured) into `dir`")
	of := optFlags{}
	fs.StringVar(&of.profile, "profile", "", "cost-model profile (default: the GPU's, else h100)")
	fs.StringVar(&of.calibration, "calibration", "", "a calibration `file` from 'cnnc bench --calibrate' or --fit")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *samples < 1 || *measure < 0 || *batch < 1 {
		return badInputf("want --samples >= 1, --measure >= 0, --batch >= 1 and no arguments; see 'cnnc nas --help'")
	}
	shard, err := nas.ParseShard(*shardFlag)
	if err != nil {
		return badInput(err)
	}
	var dev *cuda.Device
	var devs []*cuda.Device
	if *measure > 0 {
		if devs, err = openGPUs(*gpus); err != nil {
			return err
		}
		defer func() {
			for _, d := range devs {
				d.Close()
			}
		}()
		dev = devs[0]
	}
	prof, err := cardProfile(of, dev)
	if err != nil {
		return err
	}
	first, count := shard.Range(*samples)
	cands := nas.Sample(*seed, first, count)
	start := time.Now()
	results := nas.PredictAll(cands, *batch, prof, nil)
	fmt.Fprintf(stdout, "predicted %d candidates (%d-%d of %d, profile %s) in %.1fs\n", len(results), first, first+count-1, *samples, prof.Name, time.Since(start).Seconds())
	if dev != nil {
		if err := measureCandidates(devs, results, *measure, *seed, *iters, prof, stdout); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := nas.WriteResults(&buf, results); err != nil {
		return err
	}
	if err := tensorfile.WriteFileAtomic(*out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	if *kernels != "" {
		var kb bytes.Buffer
		n := 0
		for _, r := range results {
			if r.KernelTimes != nil {
				line, err := json.Marshal(r.KernelTimes)
				if err != nil {
					return err
				}
				kb.Write(append(line, '\n'))
				n++
			}
		}
		if err := tensorfile.WriteFileAtomic(*kernels, kb.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%d candidates' kernels)\n", *kernels, n)
	}
	if *measure > 0 {
		nas.Summarize(results).WriteMarkdown(stdout)
	}
	return writeNASPlots(*plots, results, stdout)
}

// writeNASPlots draws the study's plots into dir (none when dir is "";
// the predicted-vs-measured one only when something was measured).
func writeNASPlots(dir string, rs []nas.Result, stdout io.Writer) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	flops := filepath.Join(dir, "nas_flops_vs_latency.png")
	if err := nas.PlotFLOPsVsLatency(rs, flops); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", flops)
	if nas.Summarize(rs).Measured > 0 {
		pred := filepath.Join(dir, "nas_predicted_vs_measured.png")
		if err := nas.PlotPredictedVsMeasured(rs, pred); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", pred)
	}
	return nil
}

// measureCandidates times the chosen candidates: compiled in parallel on
// the CPUs, each timed by one worker per GPU (devs[0] is already open;
// the others are opened here), every result written into its slot.
func measureCandidates(devs []*cuda.Device, results []nas.Result, m int, seed uint64, iters int, prof costmodel.Profile, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "cnnc-nas")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pick := nas.ToMeasure(results, m, seed)
	start := time.Now()

	type job struct {
		i int
		c *nas.Compiled
	}
	jobs := make(chan job, len(devs))
	var compile sync.WaitGroup
	next := make(chan int, len(pick))
	for _, i := range pick {
		next <- i
	}
	close(next)
	for range max(1, goruntime.NumCPU()-len(devs)) {
		compile.Add(1)
		go func() {
			defer compile.Done()
			for i := range next {
				c, err := nas.Compile(&results[i], prof, dir)
				if err != nil {
					results[i].Error = err.Error() // reported; the sweep goes on
					continue
				}
				jobs <- job{i, c}
			}
		}()
	}
	go func() { compile.Wait(); close(jobs) }()

	var timed sync.WaitGroup
	var mu sync.Mutex
	done := 0
	errs := make([]error, len(devs))
	for d, dev := range devs {
		timed.Add(1)
		go func() {
			defer timed.Done()
			sms, err := dev.Attribute(cuda.AttrMultiprocessorCount)
			if err == nil {
				var c bench.Ceilings
				if c, err = bench.MeasureCeilings(dev, sms); err == nil {
					for j := range jobs {
						if err := nas.Time(dev, &results[j.i], j.c, c.FP32TFLOPS, iters); err != nil {
							results[j.i].Error = err.Error()
						}
						os.Remove(j.c.PTX)
						mu.Lock()
						if done++; done%10 == 0 {
							fmt.Fprintf(stdout, "measured %d of %d\n", done, len(pick))
						}
						mu.Unlock()
					}
					return
				}
			}
			errs[d] = fmt.Errorf("GPU %d: %w", dev.Ordinal, err)
			for range jobs { // the other workers take the candidates
			}
		}()
	}
	timed.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "measured %d candidates on %d GPU(s) in %.1fs\n", len(pick), len(devs), time.Since(start).Seconds())
	return nil
}

// openGPUs opens every CUDA device, or the first n when n > 0.
func openGPUs(n int) ([]*cuda.Device, error) {
	count, err := cuda.Count()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		count = min(count, n)
	}
	var devs []*cuda.Device
	for i := range max(count, 1) {
		d, err := cuda.Open(i)
		if err != nil {
			for _, o := range devs {
				o.Close()
			}
			return nil, err
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func runNASMerge(args []string, stdout io.Writer) error {
	fs := newFlags("nas merge", "nas merge results.jsonl... [-o merged.jsonl] [--md summary.md]", stdout)
	out := fs.String("o", "", "write the merged results to `file`")
	md := fs.String("md", "", "write the summary as Markdown to `file`")
	plots := fs.String("plots", "", "write PNG plots into `dir`")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return badInputf("want result files to merge")
	}
	rs, err := nas.ReadResults(pos)
	if err != nil {
		return badInput(err)
	}
	var sum bytes.Buffer
	nas.Summarize(rs).WriteMarkdown(&sum)
	stdout.Write(sum.Bytes())
	if *out != "" {
		var buf bytes.Buffer
		if err := nas.WriteResults(&buf, rs); err != nil {
			return err
		}
		if err := tensorfile.WriteFileAtomic(*out, buf.Bytes()); err != nil {
			return err
		}
	}
	if *md != "" {
		if err := tensorfile.WriteFileAtomic(*md, sum.Bytes()); err != nil {
			return err
		}
	}
	return writeNASPlots(*plots, rs, stdout)
}
