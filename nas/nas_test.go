package nas

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"cnnc/artifact"
	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/passes/costmodel"
)

func TestSampleDeterministic(t *testing.T) {
	a, b := Sample(7, 0, 20), Sample(7, 0, 20)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different samples:\n%s", diff)
	}
	// A shard of the sequence is the same candidates.
	if diff := cmp.Diff(a[10:], Sample(7, 10, 10)); diff != "" {
		t.Errorf("Sample(7, 10, 10) is not the tail of Sample(7, 0, 20):\n%s", diff)
	}
	if diff := cmp.Diff(a, Sample(8, 0, 20)); diff == "" {
		t.Error("different seeds gave the same candidates")
	}
}

// TestBuildVerifiesAndRuns: sampled candidates build to verified graphs
// whose interpreter output is finite, at the resolution.
func TestBuildVerifiesAndRuns(t *testing.T) {
	for _, c := range Sample(3, 0, 2) {
		g, err := Build(c, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := ir.Verify(g); err != nil {
			t.Fatal(err)
		}
		if testing.Short() {
			continue
		}
		out, err := interp.Run(g, interp.RandomInputs(g, 1))
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, classes}; !ir.ShapeEqual(out[0].Shape, want) {
			t.Errorf("output %v, want %v", out[0].Shape, want)
		}
		var sum float64
		for _, v := range out[0].Data {
			sum += float64(v) * float64(v)
		}
		if !(sum > 0) || sum != sum {
			t.Errorf("candidate %d: output energy %g", c.ID, sum)
		}
	}
}

// TestPredictScales: a wider or deeper network has more FLOPs and a
// longer predicted time; predicting is cheap (the figure is 1000
// candidates in under 60 s on two cores; here 40 are timed and reported).
func TestPredictScales(t *testing.T) {
	prof, _ := costmodel.Lookup("h100")
	base := Sample(1, 0, 1)[0]
	big := base
	big.Width = 1.25
	big.Stages = append([]Stage{}, base.Stages...)
	for i := range big.Stages {
		big.Stages[i].Depth = 4
		big.Stages[i].Expansion = 6
	}
	small := base
	small.Width = 0.5
	small.Stages = append([]Stage{}, base.Stages...)
	for i := range small.Stages {
		small.Stages[i].Depth = 1
		small.Stages[i].Expansion = 1
	}
	rs, rb := Predict(small, 1, prof), Predict(big, 1, prof)
	if rs.Error != "" || rb.Error != "" {
		t.Fatal(rs.Error, rb.Error)
	}
	if !(rb.FLOPs > 4*rs.FLOPs && rb.PredictedMs > rs.PredictedMs) {
		t.Errorf("small: %d FLOPs %.3f ms; big: %d FLOPs %.3f ms", rs.FLOPs, rs.PredictedMs, rb.FLOPs, rb.PredictedMs)
	}
	start := time.Now()
	res := PredictAll(Sample(2, 0, 40), 1, prof, nil)
	per := time.Since(start) / 40
	for _, r := range res {
		if r.Error != "" || r.PredictedMs <= 0 {
			t.Fatalf("candidate %d: %+v", r.ID, r)
		}
	}
	t.Logf("%v per candidate: 1000 candidates in about %v", per, per*1000)
}

func TestKendall(t *testing.T) {
	if got := Kendall([]float64{1, 2, 3, 4}, []float64{2, 4, 6, 8}); got != 1 {
		t.Errorf("tau of a monotone pair = %v, want 1", got)
	}
	if got := Kendall([]float64{1, 2, 3}, []float64{3, 2, 1}); got != -1 {
		t.Errorf("tau of a reversed pair = %v, want -1", got)
	}
	// scipy.stats.kendalltau([1,2,3,4,5], [3,1,2,5,4]) = 0.4
	if got := Kendall([]float64{1, 2, 3, 4, 5}, []float64{3, 1, 2, 5, 4}); math.Abs(got-0.4) > 1e-12 {
		t.Errorf("tau = %v, want 0.4", got)
	}
}

func TestShards(t *testing.T) {
	covered := make([]int, 1000)
	for i := 0; i < 7; i++ {
		first, n := Shard{i, 7}.Range(1000)
		for j := first; j < first+n; j++ {
			covered[j]++
		}
	}
	for j, c := range covered {
		if c != 1 {
			t.Fatalf("candidate %d in %d shards", j, c)
		}
	}
	if s, err := ParseShard("3/8"); err != nil || s != (Shard{2, 8}) {
		t.Errorf("ParseShard(3/8) = %v, %v", s, err)
	}
	for _, bad := range []string{"0/4", "5/4", "x", "1/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) succeeded", bad)
		}
	}
}

func TestParetoAndMerge(t *testing.T) {
	rs := []Result{
		{Candidate: Candidate{ID: 0}, FLOPs: 100, PredictedMs: 1},
		{Candidate: Candidate{ID: 1}, FLOPs: 50, PredictedMs: 2}, // dominated by 0
		{Candidate: Candidate{ID: 2}, FLOPs: 300, PredictedMs: 3},
		{Candidate: Candidate{ID: 3}, FLOPs: 200, PredictedMs: 4}, // dominated by 2
	}
	if got := ParetoFront(rs, func(r Result) float64 { return r.PredictedMs }); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("front = %v, want [0 2]", got)
	}
	if got := ToMeasure(rs, 3, 1); len(got) != 3 || !slices.Contains(got, 0) || !slices.Contains(got, 2) {
		t.Errorf("ToMeasure = %v, want the front and one more", got)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	fa, _ := os.Create(a)
	WriteResults(fa, rs[:2])
	fa.Close()
	measured := rs[1]
	measured.MeasuredMs = 0.7
	fb, _ := os.Create(b)
	WriteResults(fb, append([]Result{measured}, rs[2:]...))
	fb.Close()
	merged, err := ReadResults([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(merged) != 4 || merged[1].MeasuredMs != 0.7 || merged[3].ID != 3 {
		t.Errorf("merged = %+v", merged)
	}
	s := Summarize(merged)
	if s.Measured != 1 || s.Candidates != 4 {
		t.Errorf("summary %+v", s)
	}
}

func TestPlots(t *testing.T) {
	prof, _ := costmodel.Lookup("h100")
	rs := PredictAll(Sample(4, 0, 30), 1, prof, nil)
	for i := range rs[:10] {
		rs[i].MeasuredMs = rs[i].PredictedMs * (1 + 0.1*float64(i%3))
		rs[i].MeasUtil = rs[i].PredUtil
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "flops.png"), filepath.Join(dir, "pred.png")
	if err := PlotFLOPsVsLatency(rs, a); err != nil {
		t.Fatal(err)
	}
	if err := PlotPredictedVsMeasured(rs, b); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		st, err := os.Stat(p)
		if err != nil || st.Size() < 5000 {
			t.Errorf("%s: %v, %d bytes", p, err, st.Size())
		}
	}
	if err := PlotPredictedVsMeasured(rs[10:], b); err == nil {
		t.Error("a plot of no measured candidates succeeded")
	}
	if os.Getenv("CNNC_KEEP_PLOTS") != "" {
		os.Rename(a, "/tmp/nas_flops.png")
		os.Rename(b, "/tmp/nas_pred.png")
	}
}

// TestCompileWritesArtifact: a candidate compiles on the CPU into a PTX
// artifact whose plan has the predicted number of kernels, ready for a
// GPU worker.
func TestCompileWritesArtifact(t *testing.T) {
	if os.Getenv("CNNC_SKIP_LLC") == "1" {
		t.Skip("CNNC_SKIP_LLC=1")
	}
	prof, err := costmodel.Lookup("h100")
	if err != nil {
		t.Fatal(err)
	}
	r := Predict(Sample(3, 0, 1)[0], 1, prof)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	c, err := Compile(&r, prof, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ptx, err := os.ReadFile(c.PTX)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ptx), ".entry") {
		t.Errorf("%s has no kernel entry", c.PTX)
	}
	plan, err := artifact.ReadPlan(strings.TrimSuffix(c.PTX, ".ptx") + ".plan.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Launches) < r.Kernels {
		t.Errorf("plan has %d launches, the prediction counted %d kernels", len(plan.Launches), r.Kernels)
	}
}
