package nas

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// utilColor maps a utilization in [0, max] from blue (low) to red (high).
func utilColor(u, top float64) color.Color {
	f := math.Max(0, math.Min(1, u/top))
	return color.RGBA{R: uint8(40 + 200*f), G: 60, B: uint8(220 - 180*f), A: 255}
}

// scatter draws points (x, y) coloured by c.
func scatter(p *plot.Plot, xs, ys []float64, colors []color.Color) error {
	for i := range xs {
		s, err := plotter.NewScatter(plotter.XYs{{X: xs[i], Y: ys[i]}})
		if err != nil {
			return err
		}
		s.GlyphStyle.Color = colors[i]
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		s.GlyphStyle.Radius = vg.Points(2.5)
		p.Add(s)
	}
	return nil
}

// PlotFLOPsVsLatency draws model FLOPs against latency (measured where
// there is a measurement, else predicted), coloured by utilization.
func PlotFLOPsVsLatency(rs []Result, path string) error {
	p := plot.New()
	p.Title.Text = "NAS candidates: model FLOPs vs latency (colour: utilization, blue low, red high)"
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "model GFLOPs"
	var xs, ys, us []float64
	top := 0.0
	for _, r := range rs {
		if r.Error != "" {
			continue
		}
		lat, u := r.PredictedMs, r.PredUtil
		if r.MeasuredMs > 0 {
			lat, u = r.MeasuredMs, r.MeasUtil
		}
		xs, ys, us = append(xs, lat), append(ys, float64(r.FLOPs)/1e9), append(us, u)
		top = math.Max(top, u)
	}
	if len(xs) == 0 {
		return fmt.Errorf("no results to plot")
	}
	colors := make([]color.Color, len(us))
	for i, u := range us {
		colors[i] = utilColor(u, top)
	}
	if err := scatter(p, xs, ys, colors); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// PlotPredictedVsMeasured draws predicted against measured latency for the
// measured candidates, with the line of perfect prediction.
func PlotPredictedVsMeasured(rs []Result, path string) error {
	p := plot.New()
	p.Title.Text = "NAS candidates: predicted vs measured latency"
	p.X.Label.Text = "measured (ms)"
	p.Y.Label.Text = "predicted (ms)"
	var xs, ys []float64
	top := 0.0
	for _, r := range rs {
		if r.MeasuredMs > 0 && r.Error == "" {
			xs, ys = append(xs, r.MeasuredMs), append(ys, r.PredictedMs)
			top = math.Max(top, math.Max(r.MeasuredMs, r.PredictedMs))
		}
	}
	if len(xs) == 0 {
		return fmt.Errorf("no measured candidates to plot")
	}
	colors := make([]color.Color, len(xs))
	for i := range colors {
		colors[i] = color.RGBA{R: 30, G: 90, B: 200, A: 255}
	}
	if err := scatter(p, xs, ys, colors); err != nil {
		return err
	}
	line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: top, Y: top}})
	if err != nil {
		return err
	}
	line.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(line)
	return p.Save(6*vg.Inch, 6*vg.Inch, path)
}
