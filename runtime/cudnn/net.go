package cudnn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"unsafe"

	"cnnc/ir"
	"cnnc/runtime/cuda"
)

// Scaling factors cuDNN reads through host pointers (float for float and
// half data). Package variables: they never move.
var one, zero float32 = 1, 0

// Net runs a graph layer by layer with cuDNN, one call (or two: a
// convolution and its bias) per node, in the precision asked, on NCHW
// tensors: the baseline cnnc's -O0 and -O2 are measured against. Views
// (reshape) alias their input. Every value has its own buffer.
type Net struct {
	dev     *cuda.Device
	handle  uintptr
	stream  cuda.Stream
	dtype   int32
	esize   int
	g       *ir.Graph
	bufs    map[*ir.Value]cuda.DevicePtr
	allocs  []cuda.DevicePtr
	ws      cuda.DevicePtr
	wsBytes uintptr
	steps   []step
	destroy []func() Status
	// gemmW is the [M,K] weight of a gemm whose constant is stored [K,M].
	gemmW  map[*ir.Node]*ir.Value
	closed bool
	// Algos is the convolution algorithm cuDNN found fastest, by output.
	Algos map[string]int
}

type step struct {
	name string
	run  func() error
}

type convStep struct {
	name          string
	x, w, conv, y uintptr
	xp, wp, yp    cuda.DevicePtr
	algo          int32
	wsBytes       uintptr
	bias          uintptr // tensor descriptor of the bias, 0 without
	bp            cuda.DevicePtr
}

// Build prepares g (NCHW, after batch-norm folding) for cuDNN in
// precision "fp32" or "fp16": descriptors for every node, buffers for
// every value, weights uploaded, and for every convolution the fastest
// algorithm cudnnFindConvolutionForwardAlgorithm measures on this card.
// An op cuDNN has no call for is an error naming the node.
func Build(dev *cuda.Device, g *ir.Graph, precision string) (*Net, error) {
	if _, err := Load(); err != nil {
		return nil, err
	}
	n := &Net{dev: dev, g: g, bufs: map[*ir.Value]cuda.DevicePtr{}, Algos: map[string]int{}, gemmW: map[*ir.Node]*ir.Value{}}
	switch precision {
	case "", "fp32":
		n.dtype, n.esize = DataFloat, 4
	case "fp16":
		n.dtype, n.esize = DataHalf, 2
	default:
		return nil, fmt.Errorf("cudnn: precision %q, want fp32 or fp16", precision)
	}
	var err error
	if n.stream, err = dev.CreateStream(); err != nil {
		return nil, err
	}
	if err := n.build(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Net) build() error {
	if err := n.dev.Batch(func(b *cuda.Batch) error {
		if err := check("cudnnCreate", lib.create(&n.handle)); err != nil {
			return err
		}
		return check("cudnnSetStream", lib.setStream(n.handle, uintptr(n.stream)))
	}); err != nil {
		return err
	}
	// Buffers: inputs and node outputs; views share their input's.
	for _, v := range n.g.Inputs {
		if err := n.alloc(v); err != nil {
			return err
		}
	}
	for _, nd := range n.g.Nodes {
		switch {
		case nd.Op == ir.OpConst:
			if err := n.upload(nd); err != nil {
				return err
			}
		case nd.Op == ir.OpReshape || nd.Op == ir.OpCopy:
			// Values are never written twice: a view or a copy can share.
			n.bufs[nd.Out] = n.bufs[nd.Inputs[0]]
		default:
			if err := n.alloc(nd.Out); err != nil {
				return err
			}
		}
		if nd.Op == ir.OpGemm && nd.Int("trans_b") == 0 {
			if err := n.transposeGemmWeight(nd); err != nil {
				return fmt.Errorf("cudnn baseline: %s: %w", nd.Describe(), err)
			}
		}
	}
	for _, nd := range n.g.Nodes {
		if nd.Op == ir.OpConst || nd.Op == ir.OpReshape || nd.Op == ir.OpCopy {
			continue
		}
		if err := n.add(nd); err != nil {
			return fmt.Errorf("cudnn baseline: %s: %w", nd.Describe(), err)
		}
	}
	if n.wsBytes > 0 {
		var err error
		if n.ws, err = n.dev.Alloc(int64(n.wsBytes)); err != nil {
			return err
		}
		n.allocs = append(n.allocs, n.ws)
	}
	return nil
}

func (n *Net) alloc(v *ir.Value) error {
	p, err := n.dev.Alloc(max(v.Type.Elems(), 1) * int64(n.esize))
	if err != nil {
		return err
	}
	n.bufs[v] = p
	n.allocs = append(n.allocs, p)
	return nil
}

// upload puts a constant on the device in the net's precision.
func (n *Net) upload(nd *ir.Node) error {
	if nd.Const == nil {
		return fmt.Errorf("cudnn baseline: %s has no data", nd.Describe())
	}
	if err := n.alloc(nd.Out); err != nil {
		return err
	}
	return n.dev.CopyHtoD(n.bufs[nd.Out], n.encode(nd.Const.Float32s()))
}

func (n *Net) encode(v []float32) []byte {
	out := make([]byte, n.esize*len(v))
	for i, x := range v {
		if n.esize == 2 {
			binary.LittleEndian.PutUint16(out[2*i:], ir.FloatToHalf(x))
		} else {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
	}
	return out
}

func (n *Net) decode(b []byte) []float32 {
	out := make([]float32, len(b)/n.esize)
	for i := range out {
		if n.esize == 2 {
			out[i] = ir.HalfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		} else {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	return out
}

// dims4 is a shape as cuDNN's 4-D NCHW: [N,C] as [N,C,1,1], [C] as
// [1,C,1,1].
func dims4(shape []int) ([4]int32, error) {
	switch len(shape) {
	case 1:
		return [4]int32{1, int32(shape[0]), 1, 1}, nil
	case 2:
		return [4]int32{int32(shape[0]), int32(shape[1]), 1, 1}, nil
	case 3:
		return [4]int32{int32(shape[0]), int32(shape[1]), int32(shape[2]), 1}, nil
	case 4:
		return [4]int32{int32(shape[0]), int32(shape[1]), int32(shape[2]), int32(shape[3])}, nil
	}
	return [4]int32{}, fmt.Errorf("a %d-D tensor; cuDNN's calls here take 1- to 4-D", len(shape))
}

// tensor creates a 4-D NCHW descriptor for shape, destroyed with the net.
func (n *Net) tensor(b *cuda.Batch, shape []int) (uintptr, error) {
	d4, err := dims4(shape)
	if err != nil {
		return 0, err
	}
	var d uintptr
	if err := check("cudnnCreateTensorDescriptor", lib.createTensor(&d)); err != nil {
		return 0, err
	}
	n.destroy = append(n.destroy, func() Status { return lib.destroyTensor(d) })
	return d, check("cudnnSetTensor4dDescriptor", lib.setTensor4d(d, formatNCHW, n.dtype, d4[0], d4[1], d4[2], d4[3]))
}

// computeType is the arithmetic of convolutions and tensor ops: float for
// both precisions (fp16 storage, fp32 accumulation, as cnnc does).
const computeType = DataFloat

// add prepares one node.
func (n *Net) add(nd *ir.Node) error {
	return n.dev.Batch(func(b *cuda.Batch) error {
		switch nd.Op {
		case ir.OpConv2D:
			return n.addConv(b, nd, nd.Inputs[0], nd.Inputs[1], nd.Out, optionalInput(nd, 2))
		case ir.OpGemm:
			return n.addGemm(b, nd)
		case ir.OpRelu, ir.OpSigmoid, ir.OpTanh, ir.OpClip, ir.OpSwish:
			return n.addActivation(b, nd)
		case ir.OpAdd, ir.OpMul:
			return n.addOpTensor(b, nd)
		case ir.OpMaxPool, ir.OpAvgPool, ir.OpGlobalAvgPool, ir.OpGlobalMaxPool:
			return n.addPool(b, nd)
		}
		return errors.New("no cuDNN call for this op in the baseline")
	})
}

func optionalInput(nd *ir.Node, i int) *ir.Value {
	if len(nd.Inputs) > i {
		return nd.Inputs[i]
	}
	return nil
}

func (n *Net) addConv(b *cuda.Batch, nd *ir.Node, x, w, y, bias *ir.Value) error {
	pads, strides, dil := []int{0, 0, 0, 0}, []int{1, 1}, []int{1, 1}
	group := 1
	if nd.Op == ir.OpConv2D {
		pads, strides, dil, group = nd.Ints("pads"), nd.Ints("strides"), nd.Ints("dilations"), nd.Int("group")
	}
	if pads[0] != pads[2] || pads[1] != pads[3] {
		return fmt.Errorf("asymmetric padding %v", pads)
	}
	c := &convStep{name: nd.Out.String(), xp: n.bufs[x], wp: n.bufs[w], yp: n.bufs[y]}
	var err error
	xs, ys := x.Type.Shape, y.Type.Shape
	if nd.Op == ir.OpGemm { // [N,K] x [M,K]^T as a 1x1 convolution
		xs, ys = []int{xs[0], xs[1], 1, 1}, []int{ys[0], ys[1], 1, 1}
	}
	if c.x, err = n.tensor(b, xs); err != nil {
		return err
	}
	if c.y, err = n.tensor(b, ys); err != nil {
		return err
	}
	ws := w.Type.Shape
	if len(ws) == 2 {
		ws = []int{ws[0], ws[1], 1, 1}
	}
	if err := check("cudnnCreateFilterDescriptor", lib.createFilter(&c.w)); err != nil {
		return err
	}
	fd := c.w
	n.destroy = append(n.destroy, func() Status { return lib.destroyFilter(fd) })
	if err := check("cudnnSetFilter4dDescriptor", lib.setFilter4d(c.w, n.dtype, formatNCHW, int32(ws[0]), int32(ws[1]), int32(ws[2]), int32(ws[3]))); err != nil {
		return err
	}
	if err := check("cudnnCreateConvolutionDescriptor", lib.createConv(&c.conv)); err != nil {
		return err
	}
	cd := c.conv
	n.destroy = append(n.destroy, func() Status { return lib.destroyConv(cd) })
	if err := check("cudnnSetConvolution2dDescriptor", lib.setConv2d(c.conv, int32(pads[0]), int32(pads[1]), int32(strides[0]), int32(strides[1]),
		int32(dil[0]), int32(dil[1]), crossCorrelation, computeType)); err != nil {
		return err
	}
	if err := check("cudnnSetConvolutionGroupCount", lib.setConvGroups(c.conv, int32(group))); err != nil {
		return err
	}
	// fp16 on the tensor cores; fp32 in fp32, as cnnc computes it: the
	// default math type would let cuDNN round fp32 inputs to TF32.
	mathType := int32(fmaMath)
	if n.dtype == DataHalf {
		mathType = tensorOpMath
	}
	if err := check("cudnnSetConvolutionMathType", lib.setConvMath(c.conv, mathType)); err != nil {
		return err
	}
	// The fastest algorithm, timed by cuDNN on this card with these shapes.
	perf := make([]byte, maxAlgos*fwdAlgoPerfBytes)
	var found int32
	if err := check("cudnnFindConvolutionForwardAlgorithm", lib.findConvFwd(n.handle, c.x, c.w, c.conv, c.y, maxAlgos, &found, unsafe.Pointer(&perf[0]))); err != nil {
		return err
	}
	best := -1
	var bestMs float32
	for i := 0; i < int(found); i++ {
		rec := perf[i*fwdAlgoPerfBytes:]
		status := int32(binary.LittleEndian.Uint32(rec[fwdAlgoPerfStatus:]))
		ms := math.Float32frombits(binary.LittleEndian.Uint32(rec[fwdAlgoPerfTimeOff:]))
		if status != 0 || ms < 0 {
			continue
		}
		if best < 0 || ms < bestMs {
			best, bestMs = i, ms
		}
	}
	if best < 0 {
		return fmt.Errorf("cuDNN found no algorithm for this convolution")
	}
	rec := perf[best*fwdAlgoPerfBytes:]
	c.algo = int32(binary.LittleEndian.Uint32(rec))
	c.wsBytes = uintptr(binary.LittleEndian.Uint64(rec[fwdAlgoPerfMemory:]))
	n.wsBytes = max(n.wsBytes, c.wsBytes)
	n.Algos[c.name] = int(c.algo)
	if bias != nil {
		if c.bias, err = n.tensor(b, []int{int(bias.Type.Elems())}); err != nil {
			return err
		}
		c.bp = n.bufs[bias]
	}
	n.steps = append(n.steps, step{name: c.name, run: func() error {
		if err := check("cudnnConvolutionForward", lib.convFwd(n.handle, unsafe.Pointer(&one), c.x, uint64(c.xp), c.w, uint64(c.wp), c.conv, c.algo,
			uint64(n.ws), n.wsBytes, unsafe.Pointer(&zero), c.y, uint64(c.yp))); err != nil {
			return err
		}
		if c.bias == 0 {
			return nil
		}
		return check("cudnnAddTensor", lib.addTensor(n.handle, unsafe.Pointer(&one), c.bias, uint64(c.bp), unsafe.Pointer(&one), c.y, uint64(c.yp)))
	}})
	return nil
}

// addGemm runs y = x W^T + b (trans_b, the form of a classifier) as a 1x1
// convolution; W stored [K,M] is transposed once at build time.
func (n *Net) addGemm(b *cuda.Batch, nd *ir.Node) error {
	if nd.Int("trans_a") != 0 || nd.Float("alpha") != 1 || nd.Float("beta") != 1 {
		return errors.New("only y = x op(W) + b (trans_a 0, alpha and beta 1)")
	}
	w := nd.Inputs[1]
	if t, ok := n.gemmW[nd]; ok {
		w = t
	}
	bias := optionalInput(nd, 2)
	if bias != nil && bias.Type.Elems() != int64(nd.Out.Type.Shape[1]) {
		return fmt.Errorf("a bias of shape %v, want one per output column", bias.Type.Shape)
	}
	return n.addConv(b, nd, nd.Inputs[0], w, nd.Out, bias)
}

// transposeGemmWeight uploads a gemm's constant [K,M] weight as [M,K]:
// cuDNN's filter is output-major.
func (n *Net) transposeGemmWeight(nd *ir.Node) error {
	w := nd.Inputs[1]
	if w.Def == nil || w.Def.Op != ir.OpConst || w.Def.Const == nil || len(w.Type.Shape) != 2 {
		return errors.New("the weight is not a 2-D constant")
	}
	k, m := w.Type.Shape[0], w.Type.Shape[1]
	data := w.Def.Const.Float32s()
	t := make([]float32, len(data))
	for i := range k {
		for j := range m {
			t[j*k+i] = data[i*m+j]
		}
	}
	tv := &ir.Value{Type: ir.Type{DType: w.Type.DType, Shape: []int{m, k}}}
	if err := n.alloc(tv); err != nil {
		return err
	}
	n.gemmW[nd] = tv
	return n.dev.CopyHtoD(n.bufs[tv], n.encode(t))
}

func (n *Net) addActivation(b *cuda.Batch, nd *ir.Node) error {
	mode, coef := int32(ActRelu), 0.0
	switch nd.Op {
	case ir.OpSigmoid:
		mode = ActSigmoid
	case ir.OpTanh:
		mode = ActTanh
	case ir.OpSwish:
		if nd.Float("alpha") != 1 {
			return errors.New("swish with alpha != 1")
		}
		mode, coef = ActSwish, 1
	case ir.OpClip:
		if nd.Float("min") != 0 || math.IsInf(nd.Float("max"), 1) {
			return fmt.Errorf("clip to [%g, %g]; cuDNN clips to [0, c]", nd.Float("min"), nd.Float("max"))
		}
		mode, coef = ActClippedRelu, nd.Float("max")
	}
	var act uintptr
	if err := check("cudnnCreateActivationDescriptor", lib.createAct(&act)); err != nil {
		return err
	}
	n.destroy = append(n.destroy, func() Status { return lib.destroyAct(act) })
	if err := check("cudnnSetActivationDescriptor", lib.setAct(act, mode, notPropagateNaN, coef)); err != nil {
		return err
	}
	x, err := n.tensor(b, nd.Inputs[0].Type.Shape)
	if err != nil {
		return err
	}
	xp, yp := n.bufs[nd.Inputs[0]], n.bufs[nd.Out]
	n.steps = append(n.steps, step{name: nd.Out.String(), run: func() error {
		return check("cudnnActivationForward", lib.actFwd(n.handle, act, unsafe.Pointer(&one), x, uint64(xp), unsafe.Pointer(&zero), x, uint64(yp)))
	}})
	return nil
}

// addOpTensor is add or mul: C = op(A, B) with A of the output's shape
// and B equal or broadcast along dims of 1 (the operands swap if needed).
func (n *Net) addOpTensor(b *cuda.Batch, nd *ir.Node) error {
	a, bb := nd.Inputs[0], nd.Inputs[1]
	if !slices.Equal(a.Type.Shape, nd.Out.Type.Shape) {
		a, bb = bb, a
	}
	if !slices.Equal(a.Type.Shape, nd.Out.Type.Shape) || len(bb.Type.Shape) != len(a.Type.Shape) {
		return fmt.Errorf("operands %v and %v: cuDNN broadcasts only the second along dims of 1", nd.Inputs[0].Type.Shape, nd.Inputs[1].Type.Shape)
	}
	op := int32(opTensorAdd)
	if nd.Op == ir.OpMul {
		op = opTensorMul
	}
	var od uintptr
	if err := check("cudnnCreateOpTensorDescriptor", lib.createOp(&od)); err != nil {
		return err
	}
	n.destroy = append(n.destroy, func() Status { return lib.destroyOp(od) })
	if err := check("cudnnSetOpTensorDescriptor", lib.setOp(od, op, computeType, notPropagateNaN)); err != nil {
		return err
	}
	ad, err := n.tensor(b, a.Type.Shape)
	if err != nil {
		return err
	}
	bd, err := n.tensor(b, bb.Type.Shape)
	if err != nil {
		return err
	}
	ap, bp, cp := n.bufs[a], n.bufs[bb], n.bufs[nd.Out]
	n.steps = append(n.steps, step{name: nd.Out.String(), run: func() error {
		return check("cudnnOpTensor", lib.opTensor(n.handle, od, unsafe.Pointer(&one), ad, uint64(ap), unsafe.Pointer(&one), bd, uint64(bp),
			unsafe.Pointer(&zero), ad, uint64(cp)))
	}})
	return nil
}

func (n *Net) addPool(b *cuda.Batch, nd *ir.Node) error {
	xs, ys := nd.Inputs[0].Type.Shape, nd.Out.Type.Shape
	if len(xs) != 4 {
		return fmt.Errorf("a %d-D input; cuDNN pools 4-D here", len(xs))
	}
	mode := int32(PoolMax)
	kernel, pads, strides := []int{xs[2], xs[3]}, []int{0, 0, 0, 0}, []int{1, 1}
	switch nd.Op {
	case ir.OpMaxPool, ir.OpAvgPool:
		kernel, pads, strides = nd.Ints("kernel"), nd.Ints("pads"), nd.Ints("strides")
		if d := nd.Ints("dilations"); d[0] != 1 || d[1] != 1 {
			return errors.New("dilated pooling")
		}
		if pads[0] != pads[2] || pads[1] != pads[3] {
			return fmt.Errorf("asymmetric padding %v", pads)
		}
		if nd.Op == ir.OpAvgPool {
			mode = PoolAvgExcludePad
			if nd.Int("count_include_pad") != 0 {
				mode = PoolAvgIncludePad
			}
		}
		// cuDNN rounds the output size down; ceil_mode must not change it.
		for i := range 2 {
			if (xs[2+i]+2*pads[i]-kernel[i])/strides[i]+1 != ys[2+i] {
				return errors.New("ceil_mode changes the output size; cuDNN rounds down")
			}
		}
	case ir.OpGlobalAvgPool:
		mode = PoolAvgIncludePad
	}
	var pd uintptr
	if err := check("cudnnCreatePoolingDescriptor", lib.createPool(&pd)); err != nil {
		return err
	}
	n.destroy = append(n.destroy, func() Status { return lib.destroyPool(pd) })
	if err := check("cudnnSetPooling2dDescriptor", lib.setPool2d(pd, mode, notPropagateNaN, int32(kernel[0]), int32(kernel[1]),
		int32(pads[0]), int32(pads[1]), int32(strides[0]), int32(strides[1]))); err != nil {
		return err
	}
	x, err := n.tensor(b, xs)
	if err != nil {
		return err
	}
	y, err := n.tensor(b, ys)
	if err != nil {
		return err
	}
	xp, yp := n.bufs[nd.Inputs[0]], n.bufs[nd.Out]
	n.steps = append(n.steps, step{name: nd.Out.String(), run: func() error {
		return check("cudnnPoolingForward", lib.poolFwd(n.handle, pd, unsafe.Pointer(&one), x, uint64(xp), unsafe.Pointer(&zero), y, uint64(yp)))
	}})
	return nil
}

// Layers is how many cuDNN steps one run makes (a convolution with a bias
// counts once).
func (n *Net) Layers() int { return len(n.steps) }

func (n *Net) enqueue() error {
	for _, s := range n.steps {
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// Run runs the net once on inputs (float32, in the order of the graph's
// inputs) and returns its outputs as float32.
func (n *Net) Run(inputs [][]float32) ([][]float32, error) {
	if len(inputs) != len(n.g.Inputs) {
		return nil, fmt.Errorf("cudnn: %d inputs, the graph has %d", len(inputs), len(n.g.Inputs))
	}
	var outs [][]float32
	err := n.dev.Batch(func(b *cuda.Batch) error {
		for i, v := range n.g.Inputs {
			if int64(len(inputs[i])) != v.Type.Elems() {
				return fmt.Errorf("cudnn: input %s has %d values, want %d", v, len(inputs[i]), v.Type.Elems())
			}
			if err := b.CopyHtoD(n.bufs[v], n.encode(inputs[i])); err != nil {
				return err
			}
		}
		if err := n.enqueue(); err != nil {
			return err
		}
		if err := b.SyncStream(n.stream); err != nil {
			return err
		}
		for _, v := range n.g.Outputs {
			raw := make([]byte, v.Type.Elems()*int64(n.esize))
			if err := b.CopyDtoH(raw, n.bufs[v]); err != nil {
				return err
			}
			outs = append(outs, n.decode(raw))
		}
		return nil
	})
	return outs, err
}

// Time is the median milliseconds of iters runs after warmup, each
// between two CUDA events: the layers' calls one after another, or
// (graph) replayed from one CUDA graph captured once.
func (n *Net) Time(warmup, iters int, graph bool) (float64, error) {
	if iters < 1 || warmup < 0 {
		return 0, fmt.Errorf("cudnn: iters %d, warmup %d", iters, warmup)
	}
	var samples []float64
	err := n.dev.Batch(func(b *cuda.Batch) (err error) {
		start, err := b.CreateEvent()
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, b.DestroyEvent(start)) }()
		end, err := b.CreateEvent()
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, b.DestroyEvent(end)) }()
		run := n.enqueue
		if graph {
			exec, err := b.Capture(n.stream, n.enqueue)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, b.DestroyGraphExec(exec)) }()
			run = func() error { return b.GraphLaunch(exec, n.stream) }
		}
		for i := range warmup + iters {
			if err := b.RecordEvent(start, n.stream); err != nil {
				return err
			}
			if err := run(); err != nil {
				return err
			}
			if err := b.RecordEvent(end, n.stream); err != nil {
				return err
			}
			if err := b.SyncEvent(end); err != nil {
				return err
			}
			ms, err := b.EventElapsed(start, end)
			if err != nil {
				return err
			}
			if i >= warmup {
				samples = append(samples, ms)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Float64s(samples)
	return samples[len(samples)/2], nil
}

// Close frees the net's descriptors, buffers, stream and handle.
func (n *Net) Close() error {
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	errs = append(errs, n.dev.Batch(func(b *cuda.Batch) error {
		for _, d := range n.destroy {
			d()
		}
		if n.handle != 0 {
			return check("cudnnDestroy", lib.destroy(n.handle))
		}
		return nil
	}))
	for _, p := range n.allocs {
		errs = append(errs, n.dev.Free(p))
	}
	errs = append(errs, n.dev.DestroyStream(n.stream))
	return errors.Join(errs...)
}
