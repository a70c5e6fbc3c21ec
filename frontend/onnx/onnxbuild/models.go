package onnxbuild

import (
	"fmt"
	"hash/fnv"
	"math"

	"cnnc/frontend/onnx"
)

// ResNet50 builds torchvision's ResNet-50 (v1.5: the stride of a bottleneck
// is on its 3x3 convolution) at opset 17, as PyTorch exports it in eval
// mode: convolutions without bias, each followed by BatchNormalization;
// bottleneck stages of [3, 4, 6, 3] blocks with widths 64, 128, 256 and 512
// and 4x expansion, a 1x1 convolution + batch norm downsampling the first
// block of each stage; GlobalAveragePool, Flatten and a Gemm from 2048 to
// 1000 classes with transB=1. The input "input" is [batch, 3, 224, 224]
// (batch <= 0 makes it symbolic, "N") and the output "output" is
// [batch, 1000]. Initializers carry torchvision's parameter names and
// real-size random weights drawn from seed (25,557,032 parameters plus
// 53,120 batch-norm running statistics, about 102 MB).
func ResNet50(batch int, seed uint64) *Builder {
	n := &net{b: New("resnet50", 17), seed: seed}
	x := n.b.Input("input", onnx.DTFloat, int64(batch), 3, 224, 224)
	x = n.convBN(x, "conv1", "bn1", 3, 64, 7, 2, 3, 1)
	x = n.b.Node("Relu", []string{x})
	x = n.maxPool(x, 3, 2, 1)
	in := int64(64)
	for stage, blocks := range []int{3, 4, 6, 3} {
		width := int64(64) << stage
		for i := range blocks {
			stride := int64(1)
			if i == 0 && stage > 0 {
				stride = 2
			}
			x = n.bottleneck(x, fmt.Sprintf("layer%d.%d", stage+1, i), in, width, stride)
			in = 4 * width
		}
	}
	x = n.b.Node("GlobalAveragePool", []string{x})
	x = n.b.Node("Flatten", []string{x}, Int("axis", 1))
	n.b.Rename(n.gemm(x, "fc", in, 1000), "output")
	n.b.Output("output", onnx.DTFloat, int64(batch), 1000)
	return n.b
}

// bottleneck adds one torchvision Bottleneck block: 1x1 to width, 3x3 with
// the block's stride, 1x1 to 4*width, plus the identity or a downsampling
// 1x1 convolution, then ReLU.
func (n *net) bottleneck(x, name string, in, width, stride int64) string {
	out := 4 * width
	y := n.convBN(x, name+".conv1", name+".bn1", in, width, 1, 1, 0, 1)
	y = n.b.Node("Relu", []string{y})
	y = n.convBN(y, name+".conv2", name+".bn2", width, width, 3, stride, 1, 1)
	y = n.b.Node("Relu", []string{y})
	y = n.convBN(y, name+".conv3", name+".bn3", width, out, 1, 1, 0, 1)
	identity := x
	if stride != 1 || in != out {
		identity = n.convBN(x, name+".downsample.0", name+".downsample.1", in, out, 1, stride, 0, 1)
	}
	y = n.b.Node("Add", []string{y, identity})
	return n.b.Node("Relu", []string{y})
}

// TinyResNet builds the small CNN embedded in the CLI as its example: input
// "input" [1, 3, 32, 32]; a 3x3 convolution to 16 channels with batch norm
// and ReLU; two residual basic blocks, the second with stride 2 and a 1x1
// downsampling convolution (to 32 channels); a depthwise-separable block
// (depthwise 3x3, batch norm and ReLU6 as Clip with min and max
// initializers, then a 1x1 pointwise convolution to 64 channels with batch
// norm); a 2x2 max pool; GlobalAveragePool, Flatten, a Gemm to 10 classes
// and Softmax into "output" [1, 10]. Opset 17, about 23,000 weights.
func TinyResNet(seed uint64) *Builder {
	n := &net{b: New("tinyresnet", 17), seed: seed}
	x := n.b.Input("input", onnx.DTFloat, 1, 3, 32, 32)
	x = n.convBN(x, "conv1", "bn1", 3, 16, 3, 1, 1, 1)
	x = n.b.Node("Relu", []string{x})
	x = n.basicBlock(x, "layer1", 16, 16, 1)
	x = n.basicBlock(x, "layer2", 16, 32, 2)
	x = n.convBN(x, "dw.conv", "dw.bn", 32, 32, 3, 1, 1, 32)
	lo := n.b.Initializer("relu6.min", nil, []float32{0})
	hi := n.b.Initializer("relu6.max", nil, []float32{6})
	x = n.b.Node("Clip", []string{x, lo, hi})
	x = n.convBN(x, "pw.conv", "pw.bn", 32, 64, 1, 1, 0, 1)
	x = n.maxPool(x, 2, 2, 0)
	x = n.b.Node("GlobalAveragePool", []string{x})
	x = n.b.Node("Flatten", []string{x}, Int("axis", 1))
	x = n.gemm(x, "fc", 64, 10)
	n.b.Rename(n.b.Node("Softmax", []string{x}, Int("axis", 1)), "output")
	n.b.Output("output", onnx.DTFloat, 1, 10)
	return n.b
}

// basicBlock adds one torchvision BasicBlock: two 3x3 convolutions with
// batch norm, the first strided, plus the identity or a 1x1 downsampling
// convolution, then ReLU.
func (n *net) basicBlock(x, name string, in, out, stride int64) string {
	y := n.convBN(x, name+".conv1", name+".bn1", in, out, 3, stride, 1, 1)
	y = n.b.Node("Relu", []string{y})
	y = n.convBN(y, name+".conv2", name+".bn2", out, out, 3, 1, 1, 1)
	identity := x
	if stride != 1 || in != out {
		identity = n.convBN(x, name+".downsample.0", name+".downsample.1", in, out, 1, stride, 0, 1)
	}
	y = n.b.Node("Add", []string{y, identity})
	return n.b.Node("Relu", []string{y})
}

// net adds layers with named, seeded weights to a Builder.
type net struct {
	b    *Builder
	seed uint64
}

// weightSeed derives a tensor's seed from the model's seed and the tensor's
// name, so that each tensor's data does not depend on the others.
func (n *net) weightSeed(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() ^ (n.seed * 0x9e3779b97f4a7c15)
}

// heScale is the bound of a layer's uniform weights: sqrt(2/fan_in), He's
// scale used as the bound, which gives a third of He's variance. In a plain
// conv+ReLU stack that would shrink activations, but in a residual network
// the identity path carries the signal, and small branches stop the block
// sums from doubling in variance block after block, as He's full variance
// does when batch-norm statistics are random rather than measured (the
// ResNet-50 logits then reach 1e4). With this scale activations stay O(1),
// an RMS of about 0.1 to 1, from the stem to the logits.
func heScale(fanIn int64) float32 { return float32(math.Sqrt(2 / float64(fanIn))) }

// convBN adds a bias-free k x k convolution from in to out channels and the
// batch norm after it, with torchvision's parameter names conv.weight,
// bn.weight, bn.bias, bn.running_mean and bn.running_var.
func (n *net) convBN(x, conv, bn string, in, out, k, stride, pad, group int64) string {
	fanIn := in / group * k * k
	w := n.b.Random(conv+".weight", []int64{out, in / group, k, k}, heScale(fanIn), n.weightSeed(conv+".weight"))
	y := n.b.Node("Conv", []string{x, w},
		Ints("dilations", 1, 1), Int("group", group), Ints("kernel_shape", k, k),
		Ints("pads", pad, pad, pad, pad), Ints("strides", stride, stride))
	return n.batchNorm(y, bn, out)
}

// batchNorm adds an eval-mode BatchNormalization over c channels with
// gamma in [0.5, 1.5), beta and mean in [-0.1, 0.1) and variance in
// [0.5, 1.5).
func (n *net) batchNorm(x, name string, c int64) string {
	param := func(suffix string, lo, hi float32) string {
		full := name + "." + suffix
		return n.b.Initializer(full, []int64{c}, uniform(int(c), lo, hi, n.weightSeed(full)))
	}
	gamma := param("weight", 0.5, 1.5)
	beta := param("bias", -0.1, 0.1)
	mean := param("running_mean", -0.1, 0.1)
	variance := param("running_var", 0.5, 1.5)
	return n.b.Node("BatchNormalization", []string{x, gamma, beta, mean, variance},
		Float("epsilon", 1e-5), Float("momentum", 0.9))
}

func (n *net) maxPool(x string, k, stride, pad int64) string {
	return n.b.Node("MaxPool", []string{x},
		Int("ceil_mode", 0), Ints("dilations", 1, 1), Ints("kernel_shape", k, k),
		Ints("pads", pad, pad, pad, pad), Ints("strides", stride, stride))
}

// gemm adds a fully connected layer from in to out features, with the
// weight stored [out, in] (transB=1) as PyTorch's Linear exports it.
func (n *net) gemm(x, name string, in, out int64) string {
	s := heScale(in)
	w := n.b.Random(name+".weight", []int64{out, in}, s, n.weightSeed(name+".weight"))
	bias := n.b.Random(name+".bias", []int64{out}, s, n.weightSeed(name+".bias"))
	return n.b.Node("Gemm", []string{x, w, bias},
		Float("alpha", 1), Float("beta", 1), Int("transB", 1))
}
