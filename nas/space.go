// Package nas is the search-space study: a MobileNetV2/FBNet-style space
// of CNNs built directly in the IR, sampled with a seed, whose latency and
// utilization the cost model predicts without a GPU (and the GPU measures
// for a subset), to ask how far predictions can stand in for
// measurements in architecture search.
package nas

import (
	"fmt"
	"math"
	"math/rand/v2"

	"cnnc/ir"
	"cnnc/ir/interp"
)

// Stage is one stage's choices.
type Stage struct {
	Kernel    int  `json:"kernel"`    // 3, 5 or 7
	Expansion int  `json:"expansion"` // 1, 3 or 6
	Depth     int  `json:"depth"`     // 1 to 4 blocks
	SE        bool `json:"se"`        // squeeze-excite in every block
}

// Candidate is one network of the space.
type Candidate struct {
	ID     int     `json:"id"`
	Width  float64 `json:"width"` // channel multiplier
	Stages []Stage `json:"stages"`
}

// The space's fixed skeleton: MobileNetV2's stages (output channels at
// width 1 and the first block's stride), a 32-channel stem and a 1280
// channel head over 1000 classes.
var (
	stageChannels = []int{16, 24, 32, 64, 96, 160, 320}
	stageStrides  = []int{1, 2, 2, 2, 1, 2, 1}
	kernels       = []int{3, 5, 7}
	expansions    = []int{1, 3, 6}
	widths        = []float64{0.5, 0.75, 1.0, 1.25}
)

const (
	stemChannels = 32
	headChannels = 1280
	classes      = 1000
	resolution   = 224
)

// Sample draws n candidates from seed, numbered from first.
func Sample(seed uint64, first, n int) []Candidate {
	rng := rand.New(rand.NewPCG(seed, 0x6e6173))
	var out []Candidate
	for i := 0; i < first+n; i++ {
		c := Candidate{ID: i, Width: widths[rng.IntN(len(widths))]}
		for range stageChannels {
			c.Stages = append(c.Stages, Stage{
				Kernel:    kernels[rng.IntN(len(kernels))],
				Expansion: expansions[rng.IntN(len(expansions))],
				Depth:     1 + rng.IntN(4),
				SE:        rng.IntN(2) == 1,
			})
		}
		if i >= first {
			out = append(out, c)
		}
	}
	return out
}

// scaled rounds channels*width to a multiple of 8 (at least 8), as
// MobileNet does.
func scaled(ch int, width float64) int {
	v := int(float64(ch)*width+4) / 8 * 8
	return max(v, 8)
}

// builder adds nodes to a candidate's graph; weights are random (a seed
// per candidate) unless the graph is built for prediction only.
type builder struct {
	g       *ir.Graph
	rng     *rand.Rand
	weights bool
	err     error
}

func (b *builder) node(op *ir.OpInfo, in []*ir.Value, attrs ir.Attrs) *ir.Value {
	if b.err != nil {
		return in[0]
	}
	n, err := b.g.NewNode(op, in, attrs, "")
	if err != nil {
		b.err = fmt.Errorf("%s: %v", op.Name, err)
		return in[0]
	}
	return n.Out
}

func (b *builder) constant(shape []int, scale float64) *ir.Value {
	blob := fmt.Sprintf("w%d", len(b.g.Nodes))
	if !b.weights { // prediction only: shapes, no data
		return b.g.NewConstShape(ir.Type{DType: ir.F32, Shape: shape}, blob, "").Out
	}
	r := interp.Random(shape, b.rng.Uint64())
	for i := range r.Data {
		r.Data[i] *= float32(scale)
	}
	return b.g.NewConst(ir.NewF32(r.Shape, r.Data), blob, "").Out
}

// conv is conv2d + bias (batch-norm already folded, as the exporters and
// fold-batchnorm leave it) with an optional activation.
func (b *builder) conv(x *ir.Value, out, k, stride, group int, act *ir.OpInfo) *ir.Value {
	in := x.Type.Shape[1]
	fanIn := in / group * k * k
	w := b.constant([]int{out, in / group, k, k}, math.Sqrt(6/float64(fanIn)))
	bias := b.constant([]int{out}, 0.1)
	p := k / 2
	y := b.node(ir.OpConv2D, []*ir.Value{x, w, bias}, ir.Attrs{"group": group, "pads": []int{p, p, p, p}, "strides": []int{stride, stride}})
	if act != nil {
		attrs := ir.Attrs{}
		if act == ir.OpClip {
			attrs = ir.Attrs{"min": 0.0, "max": 6.0}
		}
		y = b.node(act, []*ir.Value{y}, attrs)
	}
	return y
}

// block is an inverted-residual block: 1x1 expansion (unless expansion is
// 1), kxk depthwise, optional squeeze-excite, 1x1 projection, residual
// where shapes allow.
func (b *builder) block(x *ir.Value, out, stride int, s Stage) *ir.Value {
	in := x.Type.Shape[1]
	mid := in * s.Expansion
	h := x
	if s.Expansion != 1 {
		h = b.conv(h, mid, 1, 1, 1, ir.OpClip)
	}
	h = b.conv(h, mid, s.Kernel, stride, mid, ir.OpClip)
	if s.SE {
		sq := max(8, mid/4)
		p := b.node(ir.OpGlobalAvgPool, []*ir.Value{h}, nil)
		p = b.conv(p, sq, 1, 1, 1, ir.OpRelu)
		p = b.conv(p, mid, 1, 1, 1, ir.OpHardSigmoid)
		h = b.node(ir.OpMul, []*ir.Value{h, p}, nil)
	}
	h = b.conv(h, out, 1, 1, 1, nil)
	if stride == 1 && in == out {
		h = b.node(ir.OpAdd, []*ir.Value{h, x}, nil)
	}
	return h
}

// Build makes a candidate's graph at batch. With weights false the
// constants carry shapes only (enough to predict); with true they hold
// deterministic random weights (to compile and run).
func Build(c Candidate, batch int, weights bool) (*ir.Graph, error) {
	b := &builder{g: ir.NewGraph(fmt.Sprintf("nas%d", c.ID)), rng: rand.New(rand.NewPCG(uint64(c.ID), 7)), weights: weights}
	x := b.g.AddInput("input", ir.Type{DType: ir.F32, Shape: []int{batch, 3, resolution, resolution}})
	h := b.conv(x, scaled(stemChannels, c.Width), 3, 2, 1, ir.OpClip)
	for i, s := range c.Stages {
		out := scaled(stageChannels[i], c.Width)
		for d := 0; d < s.Depth; d++ {
			stride := 1
			if d == 0 {
				stride = stageStrides[i]
			}
			h = b.block(h, out, stride, s)
		}
	}
	h = b.conv(h, headChannels, 1, 1, 1, ir.OpClip)
	h = b.node(ir.OpGlobalAvgPool, []*ir.Value{h}, nil)
	h = b.node(ir.OpReshape, []*ir.Value{h}, ir.Attrs{"shape": []int{batch, headChannels}})
	w := b.constant([]int{classes, headChannels}, math.Sqrt(3/float64(headChannels)))
	fcb := b.constant([]int{classes}, 0.1)
	h = b.node(ir.OpGemm, []*ir.Value{h, w, fcb}, ir.Attrs{"trans_b": 1})
	if b.err != nil {
		return nil, fmt.Errorf("candidate %d: %v", c.ID, b.err)
	}
	b.g.Outputs = []*ir.Value{h}
	return b.g, nil
}
