package onnxbuild

import (
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"cnnc/frontend/onnx"
	"cnnc/ir"
	"cnnc/ir/interp"
)

// resNet50 is built once and shared by the tests and the benchmark.
var resNet50 = sync.OnceValue(func() *Builder { return ResNet50(1, 1) })

// opCounts counts a graph's nodes by ONNX op type.
func opCounts(g *onnx.Graph) map[string]int {
	counts := map[string]int{}
	for _, n := range g.Nodes {
		counts[n.OpType]++
	}
	return counts
}

// parameters counts the elements of a graph's initializers, without the
// running statistics of batch norms (inputs 3 and 4), which PyTorch keeps
// as buffers rather than parameters.
func parameters(g *onnx.Graph) (params, stats int64) {
	isStat := map[string]bool{}
	for _, n := range g.Nodes {
		if n.OpType == "BatchNormalization" {
			isStat[n.Inputs[3]], isStat[n.Inputs[4]] = true, true
		}
	}
	for _, t := range g.Initializers {
		n := int64(1)
		for _, d := range t.Dims {
			n *= d
		}
		if isStat[t.Name] {
			stats += n
		} else {
			params += n
		}
	}
	return params, stats
}

// importModel imports a built model from its bytes.
func importModel(t *testing.T, b *Builder, opt onnx.Options) *ir.Graph {
	t.Helper()
	g, err := onnx.Import(b.Bytes(), "x.onnx", "", opt)
	if err != nil {
		t.Fatalf("importing %s: %v", b.Model().Graph.Name, err)
	}
	return g
}

func checkOutputShape(t *testing.T, g *ir.Graph, want []int) {
	t.Helper()
	if len(g.Outputs) != 1 || !slices.Equal(g.Outputs[0].Type.Shape, want) {
		var got [][]int
		for _, o := range g.Outputs {
			got = append(got, o.Type.Shape)
		}
		t.Errorf("%s outputs: got shapes %v, want one of %v", g.Name, got, want)
	}
}

// checkActivations runs g on random inputs in the reference interpreter
// and checks that every value it computes is finite with an RMS between
// 0.02 and 5, that is, that the weights neither blow activations up nor
// let them die out. It returns the graph's outputs.
func checkActivations(t *testing.T, g *ir.Graph) []*interp.Tensor {
	t.Helper()
	outputs := len(g.Outputs)
	var probe []*ir.Value
	for _, n := range g.Nodes {
		if n.Op != ir.OpConst {
			probe = append(probe, n.Out)
		}
	}
	g.Outputs = append(g.Outputs, probe...)
	g.OutputNames = nil
	vals, err := interp.Run(g, interp.RandomInputs(g, 1))
	g.Outputs = g.Outputs[:outputs]
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals[outputs:] {
		sum := 0.0
		for _, x := range v.Data {
			sum += float64(x) * float64(x)
		}
		if rms := math.Sqrt(sum / float64(len(v.Data))); !(rms >= 0.02 && rms <= 5) {
			t.Errorf("%s: RMS %g, want 0.02 to 5", probe[i].Def.Describe(), rms)
		}
	}
	return vals[:outputs]
}

func TestResNet50Structure(t *testing.T) {
	g := resNet50().Model().Graph
	// torchvision's resnet50 has 25,557,032 parameters: 53 convolutions
	// (one stem, three per bottleneck, four downsamples), the fc layer, and
	// the scale and shift of 53 batch norms over 26,560 channels, whose
	// running mean and variance add 53,120 buffer values.
	params, stats := parameters(g)
	if params != 25_557_032 || stats != 53_120 {
		t.Errorf("got %d parameters and %d running statistics, want 25557032 and 53120", params, stats)
	}
	want := map[string]int{"Conv": 53, "BatchNormalization": 53, "Relu": 49, "Add": 16,
		"MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
	if diff := cmp.Diff(want, opCounts(g)); diff != "" {
		t.Errorf("op counts (-want +got):\n%s", diff)
	}
	// v1.5: the first block of stages 2 to 4 strides its 3x3 convolution
	// and its downsample, not its first 1x1 convolution.
	strides := map[string][]int64{}
	for _, n := range g.Nodes {
		if n.OpType == "Conv" {
			for _, a := range n.Attrs {
				if a.Name == "strides" {
					strides[n.Inputs[1]] = a.Ints
				}
			}
		}
	}
	for name, want := range map[string][]int64{
		"conv1.weight": {2, 2}, "layer1.0.conv2.weight": {1, 1},
		"layer2.0.conv1.weight": {1, 1}, "layer2.0.conv2.weight": {2, 2}, "layer2.0.downsample.0.weight": {2, 2},
		"layer3.0.conv2.weight": {2, 2}, "layer4.0.conv2.weight": {2, 2}, "layer4.1.conv2.weight": {1, 1},
	} {
		if !slices.Equal(strides[name], want) {
			t.Errorf("convolution %s: strides %v, want %v", name, strides[name], want)
		}
	}
}

func TestResNet50Imports(t *testing.T) {
	b := resNet50()
	g := importModel(t, b, onnx.Options{})
	if !slices.Equal(g.Inputs[0].Type.Shape, []int{1, 3, 224, 224}) {
		t.Errorf("input shape %v, want [1 3 224 224]", g.Inputs[0].Type.Shape)
	}
	checkOutputShape(t, g, []int{1, 1000})

	symbolic := ResNet50(0, 1)
	for _, v := range []*onnx.ValueInfo{symbolic.Model().Graph.Inputs[0], symbolic.Model().Graph.Outputs[0]} {
		if v.Dims[0] != (onnx.Dim{Param: "N"}) {
			t.Errorf("%s: batch dimension %+v, want symbolic N", v.Name, v.Dims[0])
		}
	}
	checkOutputShape(t, importModel(t, symbolic, onnx.Options{Batch: 2}), []int{2, 1000})
}

func TestResNet50Activations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ResNet-50 in the reference interpreter")
	}
	checkActivations(t, importModel(t, resNet50(), onnx.Options{}))
}

func TestTinyResNet(t *testing.T) {
	b := TinyResNet(1)
	if n := len(b.Bytes()); n >= 100_000 {
		t.Errorf("TinyResNet is %d bytes, want under 100 KB", n)
	}
	g := b.Model().Graph
	want := map[string]int{"Conv": 8, "BatchNormalization": 8, "Relu": 5, "Add": 2, "Clip": 1,
		"MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1, "Softmax": 1}
	if diff := cmp.Diff(want, opCounts(g)); diff != "" {
		t.Errorf("op counts (-want +got):\n%s", diff)
	}
	depthwise := 0
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if n.OpType == "Conv" && a.Name == "group" && a.I == 32 {
				depthwise++
			}
		}
	}
	if depthwise != 1 {
		t.Errorf("got %d depthwise (group 32) convolutions, want 1", depthwise)
	}

	ig := importModel(t, b, onnx.Options{})
	checkOutputShape(t, ig, []int{1, 10})
	out := checkActivations(t, ig)[0]
	sum := 0.0
	for _, p := range out.Data {
		sum += float64(p)
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("softmax output sums to %g, want 1", sum)
	}
}
