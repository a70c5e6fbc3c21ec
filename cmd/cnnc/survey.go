package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"

	"cnnc/bench"
	"cnnc/internal/tensorfile"
)

func runSurvey(args []string, stdout io.Writer) error {
	fs := newFlags("survey", "survey [model.onnx ...] [--models-dir DIR] [--batch 1,8,32] [--precision fp32|fp16] [--out DIR] [--peers peers.jsonl] [--gpus N] [--calibration FILE]", stdout)
	batches := fs.String("batch", "1,32", "comma-separated batch sizes")
	dir := fs.String("models-dir", "models", "with no model arguments, every .onnx `dir` holds (bench/peers/torchvision_models.py export writes them)")
	precision := fs.String("precision", defaultPrecision, "fp16 or fp32 storage")
	outDir := fs.String("out", "survey", "write survey.md, survey.json and the PNG plots into `dir`")
	peersFile := fs.String("peers", "", "PyTorch measurements (bench/peers/torchvision_models.py peers) to report beside cnnc")
	iters := fs.Int("iters", 30, "timed iterations of each measurement")
	gpusFlag := fs.Int("gpus", 0, "time on the first `n` GPUs, one worker each (default: all)")
	of := optFlags{}
	fs.StringVar(&of.calibration, "calibration", "", "a calibration `file` from 'cnnc bench --calibrate' or --fit")
	fs.StringVar(&of.profile, "profile", "", "cost-model profile (default: the card's)")
	models, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(models) == 0 {
		if models, err = filepath.Glob(filepath.Join(*dir, "*.onnx")); err != nil || len(models) == 0 {
			return badInputf("no models: give .onnx files or a --models-dir with some (export them with bench/peers/torchvision_models.py export)")
		}
	}
	var bs []int
	for _, f := range strings.Split(*batches, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || b < 1 {
			return badInputf("--batch %q: want positive integers separated by commas", *batches)
		}
		bs = append(bs, b)
	}
	if *precision != "fp32" && *precision != "fp16" {
		return badInputf("--precision %q, want fp32 or fp16", *precision)
	}
	var peers []bench.Peer
	if *peersFile != "" {
		if peers, err = bench.ReadPeers(*peersFile); err != nil {
			return badInputf("--peers: %v", err)
		}
	}
	devs, err := openGPUs(*gpusFlag)
	if err != nil {
		return err
	}
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	prof, err := cardProfile(of, devs[0])
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "cnnc-survey")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	// The CPU work (interpreter reference, both compilations) of every
	// model and batch runs in parallel; the GPUs, one worker each, time
	// the cells in order as they become ready. The tables are rewritten
	// after every cell, so a survey cut short keeps what it measured.
	type cell struct {
		name  string
		model string
		batch int
		ready chan struct{}
		prep  *bench.Prepared
		rep   *bench.Report
		err   error
	}
	var cells []*cell
	for _, m := range models {
		for _, b := range bs {
			cells = append(cells, &cell{name: fmt.Sprintf("%s batch %d", filepath.Base(m), b), model: m, batch: b, ready: make(chan struct{})})
		}
	}
	sem := make(chan struct{}, max(1, goruntime.NumCPU()/4))
	for i, c := range cells {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cellDir := filepath.Join(tmp, strconv.Itoa(i))
			if c.err = os.MkdirAll(cellDir, 0o755); c.err == nil {
				c.prep, c.err = bench.Prepare(bench.Options{Model: c.model, Batch: c.batch, Iters: *iters, Warmup: 5, Seed: 1, Profile: prof, Dir: cellDir, Precision: *precision})
			}
			close(c.ready)
		}()
	}
	var bar *progressbar.ProgressBar
	if f, ok := stdout.(*os.File); ok && bench.IsTerminal(f) {
		bar = progressbar.NewOptions(len(cells), progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	var mu sync.Mutex // guards s, the bar, stdout and the table files
	s := &bench.Survey{Failures: map[string]string{}}
	finish := func(c *cell) error {
		mu.Lock()
		defer mu.Unlock()
		if bar != nil {
			bar.Add(1)
		}
		if c.err != nil {
			// A model that fails is reported and the survey goes on.
			fmt.Fprintf(stdout, "%s: failed: %s\n", c.name, bench.OneLine(c.err))
			s.Failures[c.name] = bench.OneLine(c.err)
		} else {
			c.rep.AddPeers(peers)
			o2 := c.rep.Variants[len(c.rep.Variants)-1]
			fmt.Fprintf(stdout, "%s: %.3f ms, %.2f%% utilization\n", c.name, o2.GraphMs, 100*o2.UtilGraph)
		}
		// The reports in cell order, whatever order the GPUs finished in.
		s.Reports = s.Reports[:0]
		for _, o := range cells {
			if o.rep != nil {
				s.Reports = append(s.Reports, o.rep)
			}
		}
		return writeSurveyTables(s, *outDir, nil)
	}
	next := make(chan *cell, len(cells))
	for _, c := range cells {
		next <- c
	}
	close(next)
	var wg sync.WaitGroup
	errs := make([]error, len(devs))
	for d, dev := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				<-c.ready
				if c.err == nil {
					c.rep, c.err = bench.RunPrepared(dev, c.prep)
					if c.err != nil && len(devs) > 1 {
						c.err = fmt.Errorf("GPU %d: %w", dev.Ordinal, c.err)
					}
				}
				c.prep = nil // its graphs and plans can go
				if err := finish(c); err != nil && errs[d] == nil {
					errs[d] = err
				}
			}
		}()
	}
	wg.Wait()
	if bar != nil {
		bar.Finish()
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return writeSurveyTables(s, *outDir, stdout)
}

// writeSurveyTables writes survey.md and survey.json into dir, and with a
// non-nil stdout also prints the Markdown and draws the plots.
func writeSurveyTables(s *bench.Survey, dir string, stdout io.Writer) error {
	var md, js bytes.Buffer
	s.WriteMarkdown(&md)
	if err := s.WriteJSON(&js); err != nil {
		return err
	}
	if err := tensorfile.WriteFilesAtomic([]string{filepath.Join(dir, "survey.md"), filepath.Join(dir, "survey.json")}, [][]byte{md.Bytes(), js.Bytes()}); err != nil {
		return err
	}
	if stdout == nil {
		return nil
	}
	stdout.Write(md.Bytes())
	if len(s.Reports) == 0 {
		return fmt.Errorf("every model failed")
	}
	plots := []struct {
		name string
		draw func(string) error
	}{
		{"utilization_vs_flops.png", s.PlotUtilVsFLOPs},
		{"utilization_vs_batch.png", s.PlotUtilVsBatch},
		{"layers_" + strings.TrimSuffix(s.Reports[0].Model, ".onnx") + ".png", func(p string) error { return bench.PlotLayers(s.Reports[0], p) }},
	}
	for _, p := range plots {
		if err := p.draw(filepath.Join(dir, p.name)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %s\n", dir)
	return nil
}
