package nas

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
