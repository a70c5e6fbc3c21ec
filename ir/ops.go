package ir

import (
	"fmt"
	"math"
	"slices"
)

// The op table: one row per op. Importer, verifier, printer, interpreter
// and cost model all read these rows.
var (
	// const: a constant tensor (weights or folded values), no inputs.
	OpConst = &OpInfo{Name: "const", Class: ClassConst, MinIn: 0, MaxIn: 0,
		Infer: func(n *Node) (Type, error) { return n.Out.Type, nil }}

	// conv2d: y = conv(x[N,C,H,W], w[M,C/group,kH,kW]) + b[M]; pads are [top,left,bottom,right].
	OpConv2D = &OpInfo{Name: "conv2d", Class: ClassConv, MinIn: 2, MaxIn: 3,
		Attrs: []AttrSpec{
			{"dilations", AttrInts, []int{1, 1}},
			{"group", AttrInt, 1},
			{"pads", AttrInts, []int{0, 0, 0, 0}},
			{"strides", AttrInts, []int{1, 1}},
		},
		Infer: inferConv, MACs: convMACs}

	// batchnorm: y = (x - mean[C]) / sqrt(var[C] + epsilon) * scale[C] + bias[C] (inference form).
	OpBatchNorm = &OpInfo{Name: "batchnorm", Class: ClassNormalization, MinIn: 5, MaxIn: 5,
		Attrs: []AttrSpec{{"epsilon", AttrFloat, 1e-5}}, Infer: inferBatchNorm}

	// layernorm: normalize x over dims axis.. with epsilon, then * scale + bias.
	OpLayerNorm = &OpInfo{Name: "layernorm", Class: ClassNormalization, MinIn: 2, MaxIn: 3,
		Attrs: []AttrSpec{{"axis", AttrInt, nil}, {"epsilon", AttrFloat, 1e-5}}, Infer: inferLayerNorm}

	// lrn: local response normalization across size channels.
	OpLRN = &OpInfo{Name: "lrn", Class: ClassNormalization, MinIn: 1, MaxIn: 1,
		Attrs: []AttrSpec{{"alpha", AttrFloat, 1e-4}, {"beta", AttrFloat, 0.75}, {"bias", AttrFloat, 1.0}, {"size", AttrInt, nil}},
		Infer: inferLRN}

	// maxpool2d: max over kernel windows of x[N,C,H,W]; pads [top,left,bottom,right].
	OpMaxPool = &OpInfo{Name: "maxpool2d", Class: ClassPool, MinIn: 1, MaxIn: 1,
		Attrs: poolAttrs(false), Infer: inferPool}

	// avgpool2d: mean over kernel windows; count_include_pad=1 divides by the full window.
	OpAvgPool = &OpInfo{Name: "avgpool2d", Class: ClassPool, MinIn: 1, MaxIn: 1,
		Attrs: poolAttrs(true), Infer: inferPool}

	// global_avgpool: mean over all spatial dims, keeping them as 1.
	OpGlobalAvgPool = &OpInfo{Name: "global_avgpool", Class: ClassPool, MinIn: 1, MaxIn: 1, Infer: inferGlobalPool}

	// global_maxpool: max over all spatial dims, keeping them as 1.
	OpGlobalMaxPool = &OpInfo{Name: "global_maxpool", Class: ClassPool, MinIn: 1, MaxIn: 1, Infer: inferGlobalPool}

	// gemm: y = alpha * op(a)[M,K] x op(b)[K,N] + beta * c (broadcast to [M,N]).
	OpGemm = &OpInfo{Name: "gemm", Class: ClassGemm, MinIn: 2, MaxIn: 3,
		Attrs: []AttrSpec{{"alpha", AttrFloat, 1.0}, {"beta", AttrFloat, 1.0}, {"trans_a", AttrInt, 0}, {"trans_b", AttrInt, 0}},
		Infer: inferGemm, MACs: gemmMACs}

	// matmul: numpy matmul of N-D tensors with broadcast batch dims.
	OpMatMul = &OpInfo{Name: "matmul", Class: ClassGemm, MinIn: 2, MaxIn: 2, Infer: inferMatMul, MACs: matmulMACs}

	// reshape: the same elements in row-major order with a new static shape.
	OpReshape = &OpInfo{Name: "reshape", Class: ClassLayout, MinIn: 1, MaxIn: 1, View: true,
		Attrs: []AttrSpec{{"shape", AttrInts, nil}}, Infer: inferReshape}

	// transpose: y[i_perm] = x[i]: output dim k is input dim perm[k].
	OpTranspose = &OpInfo{Name: "transpose", Class: ClassLayout, MinIn: 1, MaxIn: 1,
		Attrs: []AttrSpec{{"perm", AttrInts, nil}}, Infer: inferTranspose}

	// concat: join inputs along axis.
	OpConcat = &OpInfo{Name: "concat", Class: ClassLayout, MinIn: 1, MaxIn: -1,
		Attrs: []AttrSpec{{"axis", AttrInt, nil}}, Infer: inferConcat}

	// slice: per dim, elements starts[d], starts[d]+steps[d], ... up to ends[d] (exclusive), normalized and clamped.
	OpSlice = &OpInfo{Name: "slice", Class: ClassLayout, MinIn: 1, MaxIn: 1,
		Attrs: []AttrSpec{{"ends", AttrInts, nil}, {"starts", AttrInts, nil}, {"steps", AttrInts, nil}}, Infer: inferSlice}

	// pad: constant padding; pads is [begin_0..begin_r-1, end_0..end_r-1], negative crops.
	OpPad = &OpInfo{Name: "pad", Class: ClassLayout, MinIn: 1, MaxIn: 1,
		Attrs: []AttrSpec{{"pads", AttrInts, nil}, {"value", AttrFloat, 0.0}}, Infer: inferPad}

	// softmax: exp(x - max) / sum over one axis.
	OpSoftmax = &OpInfo{Name: "softmax", Class: ClassReduction, MinIn: 1, MaxIn: 1,
		Attrs: []AttrSpec{{"axis", AttrInt, nil}}, Infer: inferSoftmax}

	// reduce_mean: mean over the listed axes (sorted, non-empty).
	OpReduceMean = &OpInfo{Name: "reduce_mean", Class: ClassReduction, MinIn: 1, MaxIn: 1,
		Attrs: []AttrSpec{{"axes", AttrInts, nil}, {"keepdims", AttrInt, 1}}, Infer: inferReduce}
)

func poolAttrs(avg bool) []AttrSpec {
	a := []AttrSpec{
		{"ceil_mode", AttrInt, 0},
		{"dilations", AttrInts, []int{1, 1}},
		{"kernel", AttrInts, nil},
		{"pads", AttrInts, []int{0, 0, 0, 0}},
		{"strides", AttrInts, []int{1, 1}},
	}
	if avg {
		a = append(a, AttrSpec{"count_include_pad", AttrInt, 0})
	}
	return a
}

// Element-wise ops of one input: y = f(x).
var (
	OpRelu = unaryOp("relu", func(x float64, _ *Node) float64 { return math.Max(x, 0) })
	// copy: y = x, materialized (a constant or graph input that is also a graph output).
	OpCopy        = unaryOp("copy", func(x float64, _ *Node) float64 { return x })
	OpSigmoid     = unaryOp("sigmoid", func(x float64, _ *Node) float64 { return sigmoid(x) })
	OpTanh        = unaryOp("tanh", func(x float64, _ *Node) float64 { return math.Tanh(x) })
	OpErf         = unaryOp("erf", func(x float64, _ *Node) float64 { return math.Erf(x) })
	OpExp         = unaryOp("exp", func(x float64, _ *Node) float64 { return math.Exp(x) })
	OpSqrt        = unaryOp("sqrt", func(x float64, _ *Node) float64 { return math.Sqrt(x) })
	OpNeg         = unaryOp("neg", func(x float64, _ *Node) float64 { return -x })
	OpAbs         = unaryOp("abs", func(x float64, _ *Node) float64 { return math.Abs(x) })
	OpReciprocal  = unaryOp("reciprocal", func(x float64, _ *Node) float64 { return 1 / x })
	OpSoftplus    = unaryOp("softplus", func(x float64, _ *Node) float64 { return softplus(x) })
	OpMish        = unaryOp("mish", func(x float64, _ *Node) float64 { return x * math.Tanh(softplus(x)) })
	OpHardSwish   = unaryOp("hard_swish", func(x float64, _ *Node) float64 { return x * math.Max(0, math.Min(1, x/6+0.5)) })
	OpLeakyRelu   = unaryOp("leaky_relu", leakyRelu, AttrSpec{"alpha", AttrFloat, 0.01})
	OpElu         = unaryOp("elu", elu, AttrSpec{"alpha", AttrFloat, 1.0})
	OpSwish       = unaryOp("swish", func(x float64, n *Node) float64 { return x * sigmoid(n.Float("alpha")*x) }, AttrSpec{"alpha", AttrFloat, 1.0})
	OpHardSigmoid = unaryOp("hard_sigmoid", hardSigmoid, AttrSpec{"alpha", AttrFloat, 0.2}, AttrSpec{"beta", AttrFloat, 0.5})
	OpSelu        = unaryOp("selu", selu, AttrSpec{"alpha", AttrFloat, 1.67326319217681884765625}, AttrSpec{"gamma", AttrFloat, 1.05070102214813232421875})
	OpClip        = unaryOp("clip", func(x float64, n *Node) float64 { return math.Min(math.Max(x, n.Float("min")), n.Float("max")) },
		AttrSpec{"max", AttrFloat, inf}, AttrSpec{"min", AttrFloat, -inf})
	OpGelu = unaryOp("gelu", gelu, AttrSpec{"approximate", AttrString, "none"})
)

// Element-wise ops of two inputs with numpy broadcasting: y = f(a, b).
var (
	OpAdd = binaryOp("add", func(a, b float64) float64 { return a + b })
	OpSub = binaryOp("sub", func(a, b float64) float64 { return a - b })
	OpMul = binaryOp("mul", func(a, b float64) float64 { return a * b })
	OpDiv = binaryOp("div", func(a, b float64) float64 { return a / b })
	OpMax = binaryOp("max", maxNaN)
	OpMin = binaryOp("min", minNaN)
	OpPow = binaryOp("pow", math.Pow)
	// prelu: x where x >= 0, slope*x elsewhere; slope broadcasts to x.
	OpPRelu = &OpInfo{Name: "prelu", Class: ClassElementwise, MinIn: 2, MaxIn: 2, Infer: inferPRelu,
		Binary: func(x, s float64) float64 {
			if x < 0 {
				return s * x
			}
			return x
		}}
)

func init() {
	register(OpConst, OpConv2D, OpBatchNorm, OpLayerNorm, OpLRN, OpMaxPool, OpAvgPool,
		OpGlobalAvgPool, OpGlobalMaxPool, OpGemm, OpMatMul, OpReshape, OpTranspose, OpConcat,
		OpSlice, OpPad, OpSoftmax, OpReduceMean,
		OpRelu, OpCopy, OpSigmoid, OpTanh, OpErf, OpExp, OpSqrt, OpNeg, OpAbs, OpReciprocal, OpSoftplus,
		OpMish, OpHardSwish, OpLeakyRelu, OpElu, OpSwish, OpHardSigmoid, OpSelu, OpClip, OpGelu,
		OpAdd, OpSub, OpMul, OpDiv, OpMax, OpMin, OpPow, OpPRelu)
}

func unaryOp(name string, f func(float64, *Node) float64, attrs ...AttrSpec) *OpInfo {
	return &OpInfo{Name: name, Class: ClassElementwise, MinIn: 1, MaxIn: 1, Attrs: attrs, Unary: f,
		Infer: func(n *Node) (Type, error) {
			if err := wantFloat(n, 0); err != nil {
				return Type{}, err
			}
			return n.Inputs[0].Type, nil
		}}
}

func binaryOp(name string, f func(a, b float64) float64) *OpInfo {
	return &OpInfo{Name: name, Class: ClassElementwise, MinIn: 2, MaxIn: 2, Binary: f, Infer: inferBroadcast}
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

func leakyRelu(x float64, n *Node) float64 {
	if x < 0 {
		return n.Float("alpha") * x
	}
	return x
}

func elu(x float64, n *Node) float64 {
	if x < 0 {
		return n.Float("alpha") * (math.Exp(x) - 1)
	}
	return x
}

func selu(x float64, n *Node) float64 {
	if x <= 0 {
		return n.Float("gamma") * n.Float("alpha") * (math.Exp(x) - 1)
	}
	return n.Float("gamma") * x
}

func hardSigmoid(x float64, n *Node) float64 {
	return math.Max(0, math.Min(1, n.Float("alpha")*x+n.Float("beta")))
}

func gelu(x float64, n *Node) float64 {
	if n.Str("approximate") == "tanh" {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}
	return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
}

func maxNaN(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Max(a, b)
}

func minNaN(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Min(a, b)
}

func wantFloat(n *Node, i int) error {
	if t := n.Inputs[i].Type; !t.DType.IsFloat() {
		return fmt.Errorf("%s: input %d has dtype %s, want f32 or f16", n.Op.Name, i, t.DType)
	}
	return nil
}

func wantRank(n *Node, i, rank int, what string) error {
	if err := wantFloat(n, i); err != nil {
		return err
	}
	if r := n.Inputs[i].Type.Rank(); r != rank {
		return fmt.Errorf("%s: %s has shape %v (rank %d), want rank %d", n.Op.Name, what, n.Inputs[i].Type.Shape, r, rank)
	}
	return nil
}

func wantLen(n *Node, attr string, want int) error {
	if got := len(n.Ints(attr)); got != want {
		return fmt.Errorf("%s: attribute %s has %d values, want %d", n.Op.Name, attr, got, want)
	}
	return nil
}

// windowOut is the output length of a sliding window of extent k (with
// dilation d) over size padded by lo and hi, at stride s.
func windowOut(size, k, s, d, lo, hi int, ceil bool) (int, error) {
	if k < 1 || s < 1 || d < 1 {
		return 0, fmt.Errorf("kernel %d, stride %d and dilation %d must be at least 1", k, s, d)
	}
	span := d*(k-1) + 1
	num := size + lo + hi - span
	if num < 0 {
		return 0, fmt.Errorf("window of %d does not fit input %d padded by %d+%d", span, size, lo, hi)
	}
	out := num/s + 1
	if ceil && num%s != 0 {
		out++
		// The last window must start inside the input or the left padding.
		if (out-1)*s >= size+lo {
			out--
		}
	}
	return out, nil
}

func inferConv(n *Node) (Type, error) {
	if err := wantRank(n, 0, 4, "input"); err != nil {
		return Type{}, err
	}
	if err := wantRank(n, 1, 4, "weight"); err != nil {
		return Type{}, err
	}
	for _, a := range []struct {
		name string
		n    int
	}{{"pads", 4}, {"strides", 2}, {"dilations", 2}} {
		if err := wantLen(n, a.name, a.n); err != nil {
			return Type{}, err
		}
	}
	x, w := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape
	g := n.Int("group")
	if g < 1 || w[0]%g != 0 || x[1] != w[1]*g {
		return Type{}, fmt.Errorf("conv2d: input has %d channels and weight %v with group %d, want input channels = weight dim 1 x group and weight dim 0 divisible by group", x[1], w, g)
	}
	if len(n.Inputs) == 3 {
		if b := n.Inputs[2].Type.Shape; len(b) != 1 || b[0] != w[0] {
			return Type{}, fmt.Errorf("conv2d: bias has shape %v, want [%d]", b, w[0])
		}
	}
	p, s, d := n.Ints("pads"), n.Ints("strides"), n.Ints("dilations")
	h, err := windowOut(x[2], w[2], s[0], d[0], p[0], p[2], false)
	if err != nil {
		return Type{}, fmt.Errorf("conv2d: height: %v", err)
	}
	wo, err := windowOut(x[3], w[3], s[1], d[1], p[1], p[3], false)
	if err != nil {
		return Type{}, fmt.Errorf("conv2d: width: %v", err)
	}
	return Type{DType: n.Inputs[0].Type.DType, Shape: []int{x[0], w[0], h, wo}}, nil
}

func convMACs(n *Node) int64 {
	w := n.Inputs[1].Type.Shape
	return n.Out.Type.Elems() * int64(w[1]*w[2]*w[3])
}

func inferBatchNorm(n *Node) (Type, error) {
	x := n.Inputs[0].Type
	if err := wantFloat(n, 0); err != nil {
		return Type{}, err
	}
	if x.Rank() < 2 {
		return Type{}, fmt.Errorf("batchnorm: input has shape %v, want rank 2 or more", x.Shape)
	}
	for i, what := range []string{"scale", "bias", "mean", "var"} {
		if s := n.Inputs[i+1].Type.Shape; len(s) != 1 || s[0] != x.Shape[1] {
			return Type{}, fmt.Errorf("batchnorm: %s has shape %v, want [%d]", what, s, x.Shape[1])
		}
	}
	return x, nil
}

func inferLayerNorm(n *Node) (Type, error) {
	x := n.Inputs[0].Type
	if err := wantFloat(n, 0); err != nil {
		return Type{}, err
	}
	ax := n.Int("axis")
	if ax < 0 || ax >= x.Rank() {
		return Type{}, fmt.Errorf("layernorm: axis %d out of range for rank %d", ax, x.Rank())
	}
	inner := x.Shape[ax:]
	for i, in := range n.Inputs[1:] {
		if _, err := broadcastShapes(inner, in.Type.Shape); err != nil || len(in.Type.Shape) > len(inner) {
			return Type{}, fmt.Errorf("layernorm: input %d has shape %v, want one that broadcasts to %v", i+1, in.Type.Shape, inner)
		}
		if b, _ := broadcastShapes(inner, in.Type.Shape); !ShapeEqual(b, inner) {
			return Type{}, fmt.Errorf("layernorm: input %d has shape %v, want one that broadcasts to %v", i+1, in.Type.Shape, inner)
		}
	}
	return x, nil
}

func inferLRN(n *Node) (Type, error) {
	if err := wantFloat(n, 0); err != nil {
		return Type{}, err
	}
	if x := n.Inputs[0].Type; x.Rank() < 3 {
		return Type{}, fmt.Errorf("lrn: input has shape %v, want rank 3 or more", x.Shape)
	}
	if n.Int("size") < 1 {
		return Type{}, fmt.Errorf("lrn: size %d, want at least 1", n.Int("size"))
	}
	return n.Inputs[0].Type, nil
}

func inferPool(n *Node) (Type, error) {
	if err := wantRank(n, 0, 4, "input"); err != nil {
		return Type{}, err
	}
	for _, a := range []struct {
		name string
		n    int
	}{{"kernel", 2}, {"pads", 4}, {"strides", 2}, {"dilations", 2}} {
		if err := wantLen(n, a.name, a.n); err != nil {
			return Type{}, err
		}
	}
	x := n.Inputs[0].Type.Shape
	k, p, s, d := n.Ints("kernel"), n.Ints("pads"), n.Ints("strides"), n.Ints("dilations")
	ceil := n.Int("ceil_mode") != 0
	out := []int{x[0], x[1], 0, 0}
	for i := 0; i < 2; i++ {
		if span := d[i]*(k[i]-1) + 1; p[i] >= span || p[i+2] >= span {
			return Type{}, fmt.Errorf("%s: pads %v, want each smaller than the kernel window %d", n.Op.Name, p, span)
		}
		o, err := windowOut(x[2+i], k[i], s[i], d[i], p[i], p[i+2], ceil)
		if err != nil {
			return Type{}, fmt.Errorf("%s: %v", n.Op.Name, err)
		}
		out[2+i] = o
	}
	return Type{DType: n.Inputs[0].Type.DType, Shape: out}, nil
}

func inferGlobalPool(n *Node) (Type, error) {
	x := n.Inputs[0].Type
	if err := wantFloat(n, 0); err != nil {
		return Type{}, err
	}
	if x.Rank() < 3 {
		return Type{}, fmt.Errorf("%s: input has shape %v, want rank 3 or more", n.Op.Name, x.Shape)
	}
	out := slices.Clone(x.Shape)
	for i := 2; i < len(out); i++ {
		out[i] = 1
	}
	return Type{DType: x.DType, Shape: out}, nil
}

func inferGemm(n *Node) (Type, error) {
	if err := wantRank(n, 0, 2, "a"); err != nil {
		return Type{}, err
	}
	if err := wantRank(n, 1, 2, "b"); err != nil {
		return Type{}, err
	}
	m, k, k2, nn := gemmDims(n)
	if k != k2 {
		return Type{}, fmt.Errorf("gemm: a %v and b %v (trans_a=%d, trans_b=%d) have inner dims %d and %d, want equal",
			n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape, n.Int("trans_a"), n.Int("trans_b"), k, k2)
	}
	out := []int{m, nn}
	if len(n.Inputs) == 3 {
		if b, err := broadcastShapes(out, n.Inputs[2].Type.Shape); err != nil || !ShapeEqual(b, out) {
			return Type{}, fmt.Errorf("gemm: c has shape %v, want one that broadcasts to %v", n.Inputs[2].Type.Shape, out)
		}
	}
	return Type{DType: n.Inputs[0].Type.DType, Shape: out}, nil
}

// gemmDims returns M, K of a and K, N of b after the transposes.
func gemmDims(n *Node) (m, k, k2, nn int) {
	a, b := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape
	m, k = a[0], a[1]
	if n.Int("trans_a") != 0 {
		m, k = k, m
	}
	k2, nn = b[0], b[1]
	if n.Int("trans_b") != 0 {
		k2, nn = nn, k2
	}
	return
}

func gemmMACs(n *Node) int64 {
	m, k, _, nn := gemmDims(n)
	return int64(m) * int64(k) * int64(nn)
}

// MatMulDims splits a matmul into its broadcast batch shape and M, K, N.
func MatMulDims(a, b []int) (batch []int, m, k, nn int, err error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, 0, 0, 0, fmt.Errorf("matmul: scalar operand")
	}
	aa, bb := a, b
	if len(aa) == 1 {
		aa = []int{1, a[0]}
	}
	if len(bb) == 1 {
		bb = []int{b[0], 1}
	}
	m, k = aa[len(aa)-2], aa[len(aa)-1]
	k2 := bb[len(bb)-2]
	nn = bb[len(bb)-1]
	if k != k2 {
		return nil, 0, 0, 0, fmt.Errorf("matmul: a %v and b %v have inner dims %d and %d, want equal", a, b, k, k2)
	}
	batch, err = broadcastShapes(aa[:len(aa)-2], bb[:len(bb)-2])
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("matmul: batch dims of %v and %v: %v", a, b, err)
	}
	return batch, m, k, nn, nil
}

func inferMatMul(n *Node) (Type, error) {
	for i := range 2 {
		if err := wantFloat(n, i); err != nil {
			return Type{}, err
		}
	}
	a, b := n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape
	batch, m, _, nn, err := MatMulDims(a, b)
	if err != nil {
		return Type{}, err
	}
	out := slices.Clone(batch)
	if len(a) > 1 {
		out = append(out, m)
	}
	if len(b) > 1 {
		out = append(out, nn)
	}
	return Type{DType: n.Inputs[0].Type.DType, Shape: out}, nil
}

func matmulMACs(n *Node) int64 {
	batch, m, k, nn, _ := MatMulDims(n.Inputs[0].Type.Shape, n.Inputs[1].Type.Shape)
	return ShapeElems(batch) * int64(m) * int64(k) * int64(nn)
}

func inferReshape(n *Node) (Type, error) {
	x := n.Inputs[0].Type
	shape := n.Ints("shape")
	for _, d := range shape {
		if d < 0 {
			return Type{}, fmt.Errorf("reshape: shape %v has a negative dim, want it resolved", shape)
		}
	}
	if ShapeElems(shape) != x.Elems() {
		return Type{}, fmt.Errorf("reshape: shape %v has %d elements, input %v has %d", shape, ShapeElems(shape), x.Shape, x.Elems())
	}
	return Type{DType: x.DType, Shape: slices.Clone(shape)}, nil
}

func inferTranspose(n *Node) (Type, error) {
	x := n.Inputs[0].Type
	perm := n.Ints("perm")
	if len(perm) != x.Rank() {
		return Type{}, fmt.Errorf("transpose: perm %v for input of rank %d", perm, x.Rank())
	}
	seen := make([]bool, len(perm))
	out := make([]int, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return Type{}, fmt.Errorf("transpose: perm %v is not a permutation of 0..%d", perm, len(perm)-1)
		}
		seen[p] = true
		out[i] = x.Shape[p]
	}
	return Type{DType: x.DType, Shape: out}, nil
}

func inferConcat(n *Node) (Type, error) {
	first := n.Inputs[0].Type
	ax := n.Int("axis")
	if ax < 0 || ax >= first.Rank() {
		return Type{}, fmt.Errorf("concat: axis %d out of range for rank %d", ax, first.Rank())
	}
	out := slices.Clone(first.Shape)
	out[ax] = 0
	for i, in := range n.Inputs {
		s := in.Type.Shape
		if in.Type.DType != first.DType || len(s) != len(out) {
			return Type{}, fmt.Errorf("concat: input %d is %s, want %s with rank %d", i, in.Type, first.DType, len(out))
		}
		for d := range s {
			if d != ax && s[d] != first.Shape[d] {
				return Type{}, fmt.Errorf("concat: input %d has shape %v, want %v outside axis %d", i, s, first.Shape, ax)
			}
		}
		out[ax] += s[ax]
	}
	return Type{DType: first.DType, Shape: out}, nil
}

// SliceLen is the element count along one dim of a normalized slice.
func SliceLen(start, end, step int) int {
	if step > 0 && end > start {
		return (end - start + step - 1) / step
	}
	if step < 0 && start > end {
		return (start - end - step - 1) / -step
	}
	return 0
}

func inferSlice(n *Node) (Type, error) {
	x := n.Inputs[0].Type
	r := x.Rank()
	st, en, sp := n.Ints("starts"), n.Ints("ends"), n.Ints("steps")
	if len(st) != r || len(en) != r || len(sp) != r {
		return Type{}, fmt.Errorf("slice: starts %v, ends %v, steps %v, want %d values each", st, en, sp, r)
	}
	out := make([]int, r)
	for d := range r {
		dim := x.Shape[d]
		switch {
		case sp[d] == 0:
			return Type{}, fmt.Errorf("slice: step 0 on dim %d", d)
		case sp[d] > 0 && (st[d] < 0 || st[d] > dim || en[d] < 0 || en[d] > dim),
			sp[d] < 0 && (st[d] < 0 || st[d] > dim-1 || en[d] < -1 || en[d] > dim-1):
			return Type{}, fmt.Errorf("slice: dim %d of size %d has start %d, end %d, step %d, want them clamped to the dim", d, dim, st[d], en[d], sp[d])
		}
		out[d] = SliceLen(st[d], en[d], sp[d])
	}
	return Type{DType: x.DType, Shape: out}, nil
}

func inferPad(n *Node) (Type, error) {
	x := n.Inputs[0].Type
	p := n.Ints("pads")
	if len(p) != 2*x.Rank() {
		return Type{}, fmt.Errorf("pad: pads %v, want %d values for rank %d", p, 2*x.Rank(), x.Rank())
	}
	out := slices.Clone(x.Shape)
	for d := range out {
		out[d] += p[d] + p[d+x.Rank()]
		if out[d] < 0 {
			return Type{}, fmt.Errorf("pad: pads %v crop dim %d of size %d below zero", p, d, x.Shape[d])
		}
	}
	return Type{DType: x.DType, Shape: out}, nil
}

func inferSoftmax(n *Node) (Type, error) {
	if err := wantFloat(n, 0); err != nil {
		return Type{}, err
	}
	x := n.Inputs[0].Type
	if ax := n.Int("axis"); ax < 0 || ax >= x.Rank() {
		return Type{}, fmt.Errorf("softmax: axis %d out of range for rank %d", ax, x.Rank())
	}
	return x, nil
}

func inferReduce(n *Node) (Type, error) {
	if err := wantFloat(n, 0); err != nil {
		return Type{}, err
	}
	x := n.Inputs[0].Type
	axes := n.Ints("axes")
	if len(axes) == 0 {
		return Type{}, fmt.Errorf("%s: no axes, want them listed", n.Op.Name)
	}
	reduced := make([]bool, x.Rank())
	for i, a := range axes {
		if a < 0 || a >= x.Rank() || (i > 0 && a <= axes[i-1]) {
			return Type{}, fmt.Errorf("%s: axes %v, want sorted distinct axes in 0..%d", n.Op.Name, axes, x.Rank()-1)
		}
		reduced[a] = true
	}
	var out []int
	for d, s := range x.Shape {
		switch {
		case !reduced[d]:
			out = append(out, s)
		case n.Int("keepdims") != 0:
			out = append(out, 1)
		}
	}
	return Type{DType: x.DType, Shape: out}, nil
}

func inferPRelu(n *Node) (Type, error) {
	t, err := inferBroadcast(n)
	if err != nil {
		return Type{}, err
	}
	if !ShapeEqual(t.Shape, n.Inputs[0].Type.Shape) {
		return Type{}, fmt.Errorf("prelu: slope %v does not broadcast to input %v", n.Inputs[1].Type.Shape, n.Inputs[0].Type.Shape)
	}
	return t, nil
}

func inferBroadcast(n *Node) (Type, error) {
	a, b := n.Inputs[0].Type, n.Inputs[1].Type
	for i := range 2 {
		if err := wantFloat(n, i); err != nil {
			return Type{}, err
		}
	}
	if a.DType != b.DType {
		return Type{}, fmt.Errorf("%s: inputs are %s and %s, want one dtype", n.Op.Name, a.DType, b.DType)
	}
	s, err := broadcastShapes(a.Shape, b.Shape)
	if err != nil {
		return Type{}, fmt.Errorf("%s: %v", n.Op.Name, err)
	}
	return Type{DType: a.DType, Shape: s}, nil
}

// BroadcastShapes applies numpy broadcasting to two shapes.
func BroadcastShapes(a, b []int) ([]int, error) { return broadcastShapes(a, b) }

func broadcastShapes(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := range r {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}
