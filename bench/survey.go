package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// OpClasses are the survey's kernel classes, in report order.
var OpClasses = []string{"1x1 conv", "kxk conv", "depthwise", "GEMM", "pooling", "element-wise"}

// OpClass names the class of a kernel by what its name says it computes
// (kNNN_conv1x1_relu, kNNN_dwconv3x3, kNNN_gemm_splitk_reduce, ...).
func OpClass(kernel string) string {
	what := kernel
	if i := strings.IndexByte(kernel, '_'); i >= 0 {
		what = kernel[i+1:]
	}
	switch {
	case strings.HasPrefix(what, "dwconv"):
		return "depthwise"
	case strings.HasPrefix(what, "conv1x1"):
		return "1x1 conv"
	case strings.HasPrefix(what, "conv"):
		return "kxk conv"
	case strings.HasPrefix(what, "gemm"), strings.HasPrefix(what, "matmul"):
		return "GEMM"
	case strings.Contains(what, "pool"):
		return "pooling"
	}
	return "element-wise"
}

// ClassShare is one class's share of a variant's kernel time and FLOPs.
type ClassShare struct {
	Class      string  `json:"class"`
	TimeShare  float64 `json:"time_share"`
	FLOPsShare float64 `json:"flops_share"`
}

// Shares splits a variant's measured kernel time and model FLOPs by class.
func (v Variant) Shares() []ClassShare {
	t, f := map[string]float64{}, map[string]float64{}
	var tt, ft float64
	for _, k := range v.Kernels {
		c := OpClass(k.Kernel)
		t[c] += k.MeasuredUs
		f[c] += float64(k.FLOPs)
		tt += k.MeasuredUs
		ft += float64(k.FLOPs)
	}
	var out []ClassShare
	for _, c := range OpClasses {
		s := ClassShare{Class: c}
		if tt > 0 {
			s.TimeShare = t[c] / tt
		}
		if ft > 0 {
			s.FLOPsShare = f[c] / ft
		}
		out = append(out, s)
	}
	return out
}

// Survey is a set of bench reports over models and batches, plus the
// models that failed.
type Survey struct {
	Reports  []*Report         `json:"reports"`
	Failures map[string]string `json:"failures,omitempty"`
}

// WriteJSON writes the survey as indented JSON.
func (s *Survey) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteMarkdown writes the survey's tables: one row per model and batch,
// then where the -O2 time goes by class against where the FLOPs are.
func (s *Survey) WriteMarkdown(w io.Writer) {
	if len(s.Reports) > 0 {
		r := s.Reports[0]
		fmt.Fprintf(w, "# cnnc survey: %s, %s, SM clock %d MHz, %s\n\n", r.Card, r.Precision, r.SMClockMHz, r.Date)
		fmt.Fprintf(w, "Utilization = model FLOPs / (median time x measured %s peak %.1f TFLOP/s), CUDA-graph replay.\n\n", r.PeakName(), r.PeakTFLOPS())
	}
	fmt.Fprintln(w, "| model | batch | GFLOPs | params M | -O0 ms | -O2 ms | img/s | util -O0 | util -O2 | best peer | peer util |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range s.Reports {
		o0, o2 := r.Variants[0], r.Variants[len(r.Variants)-1]
		peer, peerUtil := "", ""
		best := math.Inf(1)
		for _, p := range r.Peers {
			if p.Error == "" && p.MedianMs > 0 && p.MedianMs < best {
				best, peer = p.MedianMs, p.Peer
				peerUtil = fmt.Sprintf("%.2f%%", 100*float64(r.ModelFLOPs)/(p.MedianMs*1e-3)/(r.PeakTFLOPS()*1e12))
			}
		}
		fmt.Fprintf(w, "| %s | %d | %.2f | %.1f | %.3f | %.3f | %.0f | %.2f%% | %.2f%% | %s | %s |\n",
			strings.TrimSuffix(r.Model, ".onnx"), r.Batch, float64(r.ModelFLOPs)/1e9, float64(r.Params)/1e6,
			o0.GraphMs, o2.GraphMs, o2.ImagesPerS, 100*o0.UtilGraph, 100*o2.UtilGraph, peer, peerUtil)
	}
	fmt.Fprintln(w, "\n## Where the -O2 time goes (share of kernel time / share of model FLOPs)")
	fmt.Fprintf(w, "\n| model | batch |")
	for _, c := range OpClasses {
		fmt.Fprintf(w, " %s |", c)
	}
	fmt.Fprintf(w, "\n| --- | --- |%s\n", strings.Repeat(" --- |", len(OpClasses)))
	for _, r := range s.Reports {
		fmt.Fprintf(w, "| %s | %d |", strings.TrimSuffix(r.Model, ".onnx"), r.Batch)
		for _, sh := range r.Variants[len(r.Variants)-1].Shares() {
			fmt.Fprintf(w, " %.0f%% / %.0f%% |", 100*sh.TimeShare, 100*sh.FLOPsShare)
		}
		fmt.Fprintln(w)
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(w, "\n## Failed")
		keys := make([]string, 0, len(s.Failures))
		for k := range s.Failures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "- %s: %s\n", k, s.Failures[k])
		}
	}
}

var batchColors = []color.Color{
	color.RGBA{30, 90, 200, 255}, color.RGBA{220, 120, 20, 255}, color.RGBA{40, 160, 60, 255}, color.RGBA{190, 40, 40, 255},
}

// PlotUtilVsFLOPs draws -O2 utilization against model FLOPs, one colour
// per batch, log-scaled FLOPs.
func (s *Survey) PlotUtilVsFLOPs(path string) error {
	p := plot.New()
	p.Title.Text = "cnnc -O2: utilization vs model FLOPs (colour: batch)"
	p.X.Label.Text = "model GFLOPs (log)"
	p.Y.Label.Text = "utilization (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	batches := s.batches()
	for bi, b := range batches {
		var pts plotter.XYs
		for _, r := range s.Reports {
			if r.Batch == b {
				pts = append(pts, plotter.XY{X: float64(r.ModelFLOPs) / 1e9, Y: 100 * r.Variants[len(r.Variants)-1].UtilGraph})
			}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color = batchColors[bi%len(batchColors)]
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(3)
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("batch %d", b), sc)
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// PlotUtilVsBatch draws each model's -O2 utilization against the batch.
func (s *Survey) PlotUtilVsBatch(path string) error {
	p := plot.New()
	p.Title.Text = "cnnc -O2: utilization vs batch"
	p.X.Label.Text = "batch (log)"
	p.Y.Label.Text = "utilization (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	models := map[string]plotter.XYs{}
	var names []string
	for _, r := range s.Reports {
		m := strings.TrimSuffix(r.Model, ".onnx")
		if _, ok := models[m]; !ok {
			names = append(names, m)
		}
		models[m] = append(models[m], plotter.XY{X: float64(r.Batch), Y: 100 * r.Variants[len(r.Variants)-1].UtilGraph})
	}
	for i, m := range names {
		pts := models[m]
		slices.SortFunc(pts, func(a, b plotter.XY) int { return int(a.X - b.X) })
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := plotColor(i)
		l.Color, sc.GlyphStyle.Color = c, c
		p.Add(l, sc)
		p.Legend.Add(m, l)
	}
	p.Legend.Top = true
	return p.Save(8*vg.Inch, 6*vg.Inch, path)
}

// PlotLayers draws the utilization of each -O2 kernel of one report, in
// launch order.
func PlotLayers(r *Report, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s, batch %d: utilization per -O2 kernel", strings.TrimSuffix(r.Model, ".onnx"), r.Batch)
	p.X.Label.Text = "kernel (launch order)"
	p.Y.Label.Text = "utilization (%)"
	var vals plotter.Values
	for _, k := range r.Variants[len(r.Variants)-1].Kernels {
		vals = append(vals, 100*k.Util)
	}
	if len(vals) == 0 {
		return fmt.Errorf("no kernels to plot")
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(3))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{30, 90, 200, 255}
	p.Add(bars)
	return p.Save(10*vg.Inch, 4*vg.Inch, path)
}

func plotColor(i int) color.Color {
	h := float64(i) * 0.61803398875
	h -= math.Floor(h)
	return color.RGBA{uint8(60 + 180*h), uint8(60 + 160*math.Abs(0.5-h)), uint8(220 - 180*h), 255}
}

func (s *Survey) batches() []int {
	var out []int
	for _, r := range s.Reports {
		if !slices.Contains(out, r.Batch) {
			out = append(out, r.Batch)
		}
	}
	slices.Sort(out)
	return out
}
