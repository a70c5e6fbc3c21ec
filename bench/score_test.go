package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cnnc/frontend/onnx"
	"cnnc/frontend/onnx/onnxbuild"
	"cnnc/passes"
	"cnnc/passes/costmodel"
)

// TestScoreTuningResNet50: the cost model, on the H100 profile with
// wgmma, ranks the 18 schedules measured for each of ResNet-50's 54 GEMM
// kernels at batch 32 (an H100 tuning file, bench/results) well enough
// that the measured time of its favourites is within 12% of the fastest
// ones' (10.6% with WgmmaEff 0.8; 14.6-15% from 0.5 to 0.7). The file's kernels were named by torchvision's ONNX nodes; they
// are matched to this ResNet-50's by launch order, each checked to be the
// same kind of convolution.
func TestScoreTuningResNet50(t *testing.T) {
	tun, err := ReadTuning("results/fp16-h100-2026-11-26-f6a97f8/resnet50_b32_fp16.tune.json")
	if err != nil {
		t.Fatal(err)
	}
	g, err := onnx.Import(onnxbuild.ResNet50(1, 1).Bytes(), "resnet50.onnx", "", onnx.Options{Batch: tun.Batch})
	if err != nil {
		t.Fatal(err)
	}
	p, err := costmodel.Lookup("h100")
	if err != nil {
		t.Fatal(err)
	}
	p.Wgmma = true
	// The file was measured before fuse-shortcut-conv, which merges four
	// of its kernels into four others.
	opt := passes.Options{OptLevel: 2, Precision: tun.Precision, Profile: p, Disable: []string{"fuse-shortcut-conv"}}
	if _, err := passes.Run(g, opt); err != nil {
		t.Fatal(err)
	}
	p.HalfStorage = true
	number := func(name string) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(name, "_", 2)[0], "k"))
		return n
	}
	slices.SortFunc(tun.Kernels, func(a, b TunedKernel) int { return number(a.Kernel) - number(b.Kernel) })
	i := 0
	for _, k := range passes.Kernels(g) {
		if !costmodel.IsGemmAnchor(k.Anchor) {
			continue
		}
		if i == len(tun.Kernels) {
			t.Fatalf("more GEMM kernels than the tuning file's %d", len(tun.Kernels))
		}
		kind := "gemm"
		if w := k.Anchor.Inputs[1].Type.Shape; len(w) == 4 {
			kind = fmt.Sprintf("conv%dx%d", w[2], w[3])
		}
		if !strings.Contains(tun.Kernels[i].Kernel, kind) {
			t.Fatalf("GEMM kernel %d is a %s, the tuning file's %s", i, kind, tun.Kernels[i].Kernel)
		}
		tun.Kernels[i].Key = passes.KernelKey(k)
		i++
	}
	s, err := ScoreTuning(g, tun, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kernels, %d candidates: picks %.1f us, best %.1f us; ln(predicted/measured) %.2f +- %.2f",
		s.Kernels, s.Candidates, s.PickedUs, s.BestUs, s.LogErrMean, s.LogErrSD)
	if s.Kernels != len(tun.Kernels) || s.Candidates < 17*s.Kernels {
		t.Errorf("scored %d kernels and %d candidates of %d kernels", s.Kernels, s.Candidates, len(tun.Kernels))
	}
	if s.PickedUs > 1.12*s.BestUs {
		t.Errorf("the cost model's favourites measure %.1f us, %.2fx the fastest candidates' %.1f us", s.PickedUs, s.PickedUs/s.BestUs, s.BestUs)
	}
}
