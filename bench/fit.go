package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"cnnc/codegen"
	"cnnc/passes/costmodel"
)

// ReadReports reads the reports of a file written by WriteJSON (one
// report) or of a stream of them, such as a JSON-lines file (a report per
// line, as bench/gpu_check.sh and `cnnc nas --kernels` write them).
func ReadReports(path string) ([]*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []*Report
	for {
		var r Report
		err := dec.Decode(&r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: report %d: not a cnnc bench report: %v", path, len(out)+1, err)
		}
		out = append(out, &r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no cnnc bench report in it", path)
	}
	return out, nil
}

// Samples are the measured launches of reports that carry the cost
// model's features.
func Samples(reports []*Report) []costmodel.Sample {
	var out []costmodel.Sample
	for _, r := range reports {
		for _, v := range r.Variants {
			for _, k := range v.Kernels {
				if k.Features != nil && k.MeasuredUs > 0 {
					out = append(out, r.sample(k))
				}
			}
		}
	}
	return out
}

// sample is k as a fit sample, compiled as the report's variants were:
// fp16 storage, and wgmma where the target has it (a report without a
// target predates sm_90a runs).
func (r *Report) sample(k KernelRow) costmodel.Sample {
	t, _ := codegen.LookupTarget(r.Target)
	return costmodel.Sample{Kernel: *k.Features, MeasuredNs: k.MeasuredUs * 1e3, HalfStorage: r.Precision == "fp16", Wgmma: t.Hopper}
}

// FitReports fits base to the reports' launches and prints, per report
// and variant, how the old and the fitted profile predict the same
// kernels: log error, Spearman and the end-to-end sum against the
// measured time with launches.
func FitReports(w io.Writer, base costmodel.Profile, reports []*Report) (costmodel.Profile, error) {
	samples := Samples(reports)
	fitted, err := base.Fit(samples)
	if err != nil {
		return base, err
	}
	fmt.Fprintf(w, "%d launches: log error %.3f before, %.3f after\n", len(samples), base.LogError(samples), fitted.LogError(samples))
	for _, r := range reports {
		for _, v := range r.Variants {
			var meas, oldP, newP []float64
			var oldSum, newSum float64
			for _, k := range v.Kernels {
				if k.Features == nil {
					continue
				}
				o, n := r.sample(k).Predict(base).Ns/1e3, r.sample(k).Predict(fitted).Ns/1e3
				meas, oldP, newP = append(meas, k.MeasuredUs), append(oldP, o), append(newP, n)
				oldSum += o
				newSum += n
			}
			fmt.Fprintf(w, "%-20s b%-3d -O%d: Spearman %.2f -> %.2f, end to end %.3f ms predicted %.3f -> %.3f ms\n",
				r.Model, r.Batch, v.OptLevel, Spearman(oldP, meas), Spearman(newP, meas), v.PlainMs, oldSum/1e3, newSum/1e3)
		}
	}
	return fitted, nil
}
