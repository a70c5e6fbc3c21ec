package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cnnc/frontend/onnx"
	"cnnc/frontend/onnx/onnxbuild"
	"cnnc/ir"
	"cnnc/passes"
	"cnnc/passes/costmodel"
)

// TestScoreTuningResNet50: the cost model, on the H100 profile with
// wgmma, ranks the schedules measured for each of ResNet-50's GEMM
// kernels at batch 32 in two H100 tuning files (bench/results) well
// enough that the measured time of its favourites is within 12% of the
// fastest ones'. The first file (18 schedules for each of 54 kernels) was
// measured before fuse-shortcut-conv and cluster split-K: 10.6% with
// WgmmaEff 0.8 (14.6-15% from 0.5 to 0.7). The second (17 for each of
// 50) after them: 10.6% with ClusterByteCost 1 and 2 (19% at 0, 17% at
// 0.5, 13% at 3). The files' kernels were named by torchvision's ONNX
// nodes; they are matched to this ResNet-50's by launch order, each
// checked to be the same kind of convolution.
func TestScoreTuningResNet50(t *testing.T) {
	for _, c := range []struct {
		file    string
		disable []string
	}{
		{"results/fp16-h100-2026-11-26-f6a97f8/resnet50_b32_fp16.tune.json", []string{"fuse-shortcut-conv"}},
		{"results/fp16-h100-2026-11-26-aa52eea/resnet50_b32_fp16.tune.json", nil},
	} {
		t.Run(strings.Split(c.file, "/")[1], func(t *testing.T) { scoreResNet50(t, c.file, c.disable) })
	}
}

// scoreResNet50 scores the cost model on a ResNet-50 tuning file, the
// -O2 pipeline run without the passes disable names.
func scoreResNet50(t *testing.T, file string, disable []string) {
	tun, err := ReadTuning(file)
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
	if _, err := passes.Run(g, passes.Options{OptLevel: 2, Precision: tun.Precision, Profile: p, Disable: disable}); err != nil {
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
	if s.Kernels != len(tun.Kernels) || s.Candidates < 16*s.Kernels {
		t.Errorf("scored %d kernels and %d candidates of %d kernels", s.Kernels, s.Candidates, len(tun.Kernels))
	}
	if s.PickedUs > 1.12*s.BestUs {
		t.Errorf("the cost model's favourites measure %.1f us, %.2fx the fastest candidates' %.1f us", s.PickedUs, s.PickedUs/s.BestUs, s.BestUs)
	}
}

// TestTuningReduce: a tuning file written before kernels recorded their
// split's Reduce still names it in the tried schedule that measured the
// kernel's time, and Schedules reads it from there: this session's H100
// file tuned ResNet-50's layer3 3x3 convolutions onto 128x256 split 2
// across a cluster, and its unsplit kernels have no Reduce.
func TestTuningReduce(t *testing.T) {
	tun, err := ReadTuning("results/fp16-h100-2026-11-26-aa52eea/resnet50_b32_fp16.tune.json")
	if err != nil {
		t.Fatal(err)
	}
	scheds := tun.Schedules()
	clusters, split1 := 0, 0
	for _, k := range tun.Kernels {
		got := scheds[k.Key].Reduce
		switch {
		case k.Reduce != "":
			t.Errorf("%s records reduce %q: the file predates the field", k.Kernel, k.Reduce)
		case k.SplitK <= 1 && got != "":
			t.Errorf("%s is unsplit, its schedule says reduce=%s", k.Kernel, got)
		case k.SplitK <= 1:
			split1++
		case got == ir.ReduceCluster:
			clusters++
		}
	}
	if clusters < 6 || split1 == 0 {
		t.Errorf("%d kernels split across a cluster, %d unsplit; want layer3's six 3x3 among the first", clusters, split1)
	}
}
