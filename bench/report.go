package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteKernels writes the kernel benchmark: -O2's GEMM-core kernels,
// largest first, against their unit's measured peak.
func (r *Report) WriteKernels(w io.Writer) {
	fmt.Fprintf(w, "# cnnc bench --kernels: %s, batch %d, %s, %s\n\n", r.Model, r.Batch, r.Precision, r.Card)
	fmt.Fprintf(w, "- measured peaks: FP32 %.1f TFLOP/s, fp16 tensor cores %.1f TFLOP/s\n\n", r.Ceilings.FP32TFLOPS, r.Ceilings.FP16TCTFLOPS)
	fmt.Fprintln(w, "| kernel | layers | GFLOP | measured us | TFLOP/s | unit | of unit peak |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range r.GemmKernels {
		fmt.Fprintf(w, "| %s | %d | %.3f | %.1f | %.1f | %s | %.1f%% |\n", k.Kernel, k.Layers, float64(k.FLOPs)/1e9, k.MeasuredUs, k.TFLOPS, k.Unit, 100*k.PeakFrac)
	}
}

// WriteMarkdown writes the report as Markdown: the card and ceilings, the
// end-to-end table of both variants, and the -O2 kernels.
func (r *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "# cnnc bench: %s, batch %d, %s\n\n", r.Model, r.Batch, r.Precision)
	fmt.Fprintf(w, "- card: %s, SM clock %d MHz, %s\n", r.Card, r.SMClockMHz, r.Date)
	fmt.Fprintf(w, "- measured ceilings: FP32 %.2f TFLOP/s, fp16 tensor cores %.1f TFLOP/s, DRAM %.0f GB/s, launch %.2f us\n",
		r.Ceilings.FP32TFLOPS, r.Ceilings.FP16TCTFLOPS, r.Ceilings.DRAMGBs, r.Ceilings.LaunchUs)
	cal := "datasheet"
	if r.Profile.Calibrated {
		cal = "calibrated"
	}
	fmt.Fprintf(w, "- cost model: %s (%s; GEMM issue efficiency %.2f)\n", r.Profile.Name, cal, r.Profile.GemmIssueEff)
	fmt.Fprintf(w, "- model FLOPs: %.3f G; utilization = model FLOPs / (median time x measured %s peak)\n\n", float64(r.ModelFLOPs)/1e9, r.PeakName())
	fmt.Fprintln(w, "| variant | kernels | arena MiB | rel L2 vs interp | launches ms | graph ms | img/s | util (launches) | util (graph) | NVML busy | predicted ms | Spearman |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, v := range r.Variants {
		fmt.Fprintf(w, "| -O%d | %d | %.1f | %.2g | %.4f | %.4f | %.0f | %.2f%% | %.2f%% | %s | %.4f | %.2f |\n",
			v.OptLevel, v.Launches, float64(v.ArenaBytes)/(1<<20), v.RelL2, v.PlainMs, v.GraphMs, v.ImagesPerS,
			100*v.UtilPlain, 100*v.UtilGraph, busyString(v.BusyPct), v.PredictedMs, v.Spearman)
	}
	fmt.Fprintf(w, "\n-O2 vs -O0: %.2fx with kernel launches, %.2fx with CUDA graphs.\n", r.SpeedupPlain, r.SpeedupGraph)
	if v := r.Variants[len(r.Variants)-1]; v.FloorMs > 0 {
		fmt.Fprintf(w, "\n-O%d roofline: each kernel's floor is the longer of its model FLOPs at the peak and its minimum bytes at the measured DRAM bandwidth; "+
			"they add up to %.4f ms, so this partition into kernels reaches at most %.1f%% utilization (graph replay takes %.2fx that).\n",
			v.OptLevel, v.FloorMs, 100*v.FloorUtil, v.GraphMs/v.FloorMs)
	}
	if len(r.GemmKernels) > 0 {
		k := r.GemmKernels[0]
		fmt.Fprintf(w, "\nLargest GEMM-core kernel at -O2: %s, %.2f GFLOP in %.1f us: %.1f TFLOP/s, %.1f%% of the measured %s peak.\n",
			k.Kernel, float64(k.FLOPs)/1e9, k.MeasuredUs, k.TFLOPS, 100*k.PeakFrac, k.Unit)
		// Kernels of the same FLOPs (a network's repeated blocks) are as
		// large: name them too, so that "the largest" is not whichever
		// came first.
		var ties []string
		for _, o := range r.GemmKernels[1:] {
			if o.FLOPs == k.FLOPs {
				ties = append(ties, fmt.Sprintf("%s %.1f%%", o.Kernel, 100*o.PeakFrac))
			}
		}
		if len(ties) > 0 {
			fmt.Fprintf(w, "As large (%.2f GFLOP): %s.\n", float64(k.FLOPs)/1e9, strings.Join(ties, ", "))
		}
		best := slices.MaxFunc(r.GemmKernels, func(a, b KernelBench) int { return cmp.Compare(a.PeakFrac, b.PeakFrac) })
		fmt.Fprintf(w, "Closest to its peak: %s, %.2f GFLOP in %.1f us: %.1f TFLOP/s, %.1f%% of the measured %s peak.\n",
			best.Kernel, float64(best.FLOPs)/1e9, best.MeasuredUs, best.TFLOPS, 100*best.PeakFrac, best.Unit)
	}
	if b := r.Baseline; b != nil && b.Error != "" {
		fmt.Fprintf(w, "\n%s layer by layer: did not run: %s\n", b.Name, b.Error)
	} else if b != nil {
		fmt.Fprintf(w, "\n%s layer by layer (%s, version %d, %d calls): %.4f ms with launches, %.4f ms as a CUDA graph, %.2f%% utilization; "+
			"rel L2 %.2g vs interp, %.2g vs cnnc -O2; cnnc -O2 is %.2fx its speed (graphs).\n",
			b.Name, b.Library, b.Version, b.Layers, b.PlainMs, b.GraphMs, 100*b.UtilGraph, b.RelL2, b.RelL2Cnnc, b.SpeedupO2)
	}
	if len(r.Peers) > 0 {
		o2 := r.Variants[len(r.Variants)-1]
		fmt.Fprintln(w, "\n| peer (same card, model, batch, precision) | median ms | compile s | util | cnnc -O2 (graph) speed vs peer |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
		for _, p := range r.Peers {
			if p.Error != "" {
				fmt.Fprintf(w, "| %s | failed: %s | | | |\n", p.Peer, p.Error)
				continue
			}
			util := float64(r.ModelFLOPs) / (p.MedianMs * 1e-3) / (r.PeakTFLOPS() * 1e12)
			fmt.Fprintf(w, "| %s | %.4f | %.1f | %.2f%% | %.2fx |\n", p.Peer, p.MedianMs, p.CompileS, 100*util, p.MedianMs/o2.GraphMs)
		}
	}
	for _, v := range r.Variants {
		if v.OptLevel != 2 {
			continue
		}
		fmt.Fprintf(w, "\n## -O2 kernels\n\n")
		fmt.Fprintln(w, "| kernel | ops | predicted us | measured us | MFLOPs | KB | TFLOP/s | GB/s | util |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		for _, k := range v.Kernels {
			fmt.Fprintf(w, "| %s | %s | %.1f | %.1f | %.2f | %.1f | %.2f | %.0f | %.1f%% |\n", k.Kernel, strings.Join(k.Ops, "+"),
				k.PredictedUs, k.MeasuredUs, float64(k.FLOPs)/1e6, float64(k.Bytes)/1024, k.TFLOPS, k.GBs, 100*k.Util)
		}
	}
}

func busyString(p float64) string {
	if p < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", p)
}
