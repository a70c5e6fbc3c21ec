// Package codegen lowers a verified IR graph to one LLVM module with one
// kernel per launch (github.com/llir/llvm), compiles it to PTX with an
// NVPTX backend, and writes the plan and weights the runtime executes.
package codegen

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"cnnc/artifact"
	"cnnc/internal/tensorfile"
	"cnnc/ir"
	"cnnc/passes"
	"cnnc/passes/costmodel"
)

// Options control a compile.
type Options struct {
	Target   string // sm_80 (default), sm_86, sm_89, sm_90, sm_90a
	Model    string // the source model's name, recorded in the plan
	OptLevel int
	// Precision is how tensors are stored: "fp32" (default) or "fp16"
	// (half storage and weights, float arithmetic).
	Precision string
	// Memory is plan-memory's arena layout; nil gives every value its own
	// region (the -O0 layout).
	Memory *passes.MemoryPlan
	// Profile predicts each launch's time for the plan; zero leaves it out.
	Profile costmodel.Profile
}

// Result is a compiled model.
type Result struct {
	LLVM    []byte // the LLVM IR module
	PTX     []byte
	Plan    *artifact.Plan
	Weights []byte
}

// launchShape is what an emitter returns: grid and threads per block.
type launchShape struct {
	grid   [3]int
	block  int
	shared int
	// persistTiles, where not 0, makes the launch persistent over that
	// many tiles (artifact.Launch.PersistTiles).
	persistTiles int
}

// nodeKernel is the state of lowering one fused kernel: its anchor node,
// the kernel params of the anchor's inputs (nil where a prologue computes
// the input), every external input's param, and the epilogue.
type nodeKernel struct {
	k        *kernel
	n        *ir.Node
	in       []value.Value
	out      value.Value
	desc     string
	params   map[*ir.Value]value.Value
	prologue []*ir.Node
	epilogue []*ir.Node
	// partner is a convolution summed into the anchor's accumulators (its
	// K after the anchor's): the epilogue's add of its output adds nothing.
	partner *ir.Node
	// lanes, while set, has the epilogue read its output-shaped operands
	// for eight output elements at once (storeEpilogue8).
	lanes *epilogueLanes
	// bare says the launch runs none of the epilogue (a GEMM's input
	// preparation): its name leaves the epilogue's ops out.
	bare bool
	// oneTile asks a GEMM core scheduled persistent for its one-tile
	// kernel (artifact.Launch.OneTile).
	oneTile bool
}

func (c *nodeKernel) describe(s string) { c.desc = s }

// prologueAnchor is the first prologue node (a depthwise conv or a global
// average pool computed inside a GEMM's operand load), or nil.
func (c *nodeKernel) prologueAnchor() *ir.Node {
	if len(c.prologue) == 0 {
		return nil
	}
	return c.prologue[0]
}

// prologueChain is the element-wise chain after the prologue anchor.
func (c *nodeKernel) prologueChain() []*ir.Node {
	var chain []*ir.Node
	for _, n := range c.prologue[1:] {
		if !n.Op.View {
			chain = append(chain, n)
		}
	}
	return chain
}

// applyEpilogue runs the kernel's epilogue on the anchor's value v at the
// output coordinates coords() gives (computed only when an operand needs
// them). at, when not nil, is the element's offset in the anchor's output
// memory: an operand of the output's shape and layout is read there,
// without coordinates.
func (c *nodeKernel) applyEpilogue(k *kernel, v value.Value, coords func() []value.Value, at value.Value) value.Value {
	if len(c.epilogue) == 0 {
		return v
	}
	return c.applyChain(k, c.epilogue, c.n.Out, v, coords, at)
}

// epilogueLanes is the epilogue at work on eight consecutive elements of
// the output (from at, a multiple of 8), one lane at a time: operands of
// the output's shape and layout are read once, 128 bits for all lanes.
type epilogueLanes struct {
	at     value.Value
	lane   int
	loaded map[value.Value][]value.Value
}

// operand is lane l's element of param at the lanes' offset.
func (l *epilogueLanes) operand(k *kernel, param value.Value) value.Value {
	v, ok := l.loaded[param]
	if !ok {
		v = k.load8(param, l.at)
		l.loaded[param] = v
	}
	return v[l.lane]
}

// storeEpilogue8 applies the epilogue to acc, the output's eight elements
// from at (a multiple of 8; coords(j) is element j's coordinates), and
// stores them as one 128-bit store to the half output. pre holds operands
// (of laneOperands) already loaded there, as four i32 words each.
func (c *nodeKernel) storeEpilogue8(k *kernel, acc []value.Value, at value.Value, coords func(j int) []value.Value, pre map[value.Value]value.Value) {
	c.lanes = &epilogueLanes{at: at, loaded: map[value.Value][]value.Value{}}
	for _, param := range c.laneOperands() {
		if w, ok := pre[param]; ok {
			c.lanes.loaded[param] = k.unpack8(w)
		}
	}
	out := make([]value.Value, len(acc))
	for j, v := range acc {
		c.lanes.lane = j
		at := k.add(at, ci(j))
		out[j] = c.applyEpilogue(k, v, func() []value.Value { return coords(j) }, at)
	}
	c.lanes = nil
	k.store8(c.out, at, out)
}

// laneOperands are the half tensors that storeEpilogue8's epilogue reads
// 128 bits at a time at the output's own offset (a residual), in the
// order it first reads them: what a GEMM core may load before its K loop
// and hand to the store.
func (c *nodeKernel) laneOperands() []value.Value {
	cur := c.n.Out
	shape, layout := cur.Type.Shape, ir.LayoutOf(cur)
	var out []value.Value
	for _, n := range c.epilogue {
		for _, in := range n.Inputs {
			if in == cur || (c.partner != nil && in == c.partner.Out) {
				continue
			}
			if _, ok := scalarConst(in); ok {
				continue
			}
			p := c.params[in]
			if slices.Equal(in.Type.Shape, shape) && ir.LayoutOf(in) == layout && elemOf(p) == types.Half && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		cur = n.Out
		if !slices.Equal(cur.Type.Shape, shape) || ir.LayoutOf(cur) != layout {
			break // applyChain reads no operand at the output's offset from here on
		}
	}
	return out
}

// applyChain applies element-wise nodes to v, the value of cur at
// coordinates co() of cur's shape (at cur's memory offset at, if known);
// other operands are loaded there with broadcasting (or are immediates).
func (c *nodeKernel) applyChain(k *kernel, chain []*ir.Node, cur *ir.Value, v value.Value, co func() []value.Value, at value.Value) value.Value {
	shape, layout := cur.Type.Shape, ir.LayoutOf(cur)
	var coords []value.Value
	for _, n := range chain {
		ops := make([]value.Value, len(n.Inputs))
		for i, in := range n.Inputs {
			if in == cur {
				ops[i] = v
				continue
			}
			if c.partner != nil && in == c.partner.Out {
				ops[i] = cf(math.Copysign(0, -1)) // already in v; x + -0 is x
				continue
			}
			if s, ok := scalarConst(in); ok {
				ops[i] = cf(s)
				continue
			}
			if at != nil && slices.Equal(in.Type.Shape, shape) && ir.LayoutOf(in) == layout {
				if l := c.lanes; l != nil {
					ops[i] = l.operand(k, c.params[in])
					continue
				}
				ops[i] = k.loadAt(c.params[in], at)
				continue
			}
			if coords == nil {
				coords = co()
			}
			ops[i] = operandAt(k, c.params[in], in, coords, shape)
		}
		if n.Op.Unary != nil {
			v = emitUnary(k, n, ops[0])
		} else {
			v = emitBinary(k, n, ops[0], ops[1])
		}
		cur = n.Out
		if !slices.Equal(cur.Type.Shape, shape) || ir.LayoutOf(cur) != layout {
			at = nil // a different element from here on
		}
	}
	return v
}

// emitters is the lowering table: op -> kernel emitter.
var emitters map[*ir.OpInfo]func(*nodeKernel) (launchShape, error)

func init() {
	emitters = map[*ir.OpInfo]func(*nodeKernel) (launchShape, error){
		ir.OpConv2D:        emitDepthwise, // GEMM-core convolutions go through emitGemmKernel
		ir.OpBatchNorm:     emitBatchNorm,
		ir.OpLayerNorm:     emitLayerNorm,
		ir.OpLRN:           emitLRN,
		ir.OpMaxPool:       emitPool,
		ir.OpAvgPool:       emitPool,
		ir.OpGlobalAvgPool: emitGlobalPool,
		ir.OpGlobalMaxPool: emitGlobalPool,
		ir.OpTranspose:     emitTranspose,
		ir.OpConcat:        emitConcat,
		ir.OpSlice:         emitSlice,
		ir.OpPad:           emitPad,
		ir.OpSoftmax:       emitSoftmax,
		ir.OpReduceMean:    emitReduceMean,
	}
	for _, op := range ir.Ops() {
		if op.Class == ir.ClassElementwise && (op.Unary != nil || op.Binary != nil) {
			emitters[op] = emitElementwise
		}
	}
}

// bufRef is where a value lives on the device.
type bufRef struct {
	buffer string
	offset int64
}

// lowering holds the state of one compile.
type lowering struct {
	g       *ir.Graph
	mod     *module
	bufs    map[*ir.Value]bufRef
	ohwi    map[*ir.Value]bufRef // weights transposed for ohwiWeights convolutions
	padw    map[paddedKey]bufRef // weights laid out for padded-input convolutions
	weights []byte
	arena   int64
	plan    *artifact.Plan
	memory  *passes.MemoryPlan
	profile costmodel.Profile
	esize   int64 // bytes per tensor element in device memory
}

// Lower builds the LLVM module, plan and weights for g without running the
// backend; Compile also produces PTX.
func Lower(g *ir.Graph, opt Options) (*Result, error) {
	target := opt.Target
	if target == "" {
		target = DefaultTarget
	}
	tgt, err := LookupTarget(target)
	if err != nil {
		return nil, err
	}
	if err := ir.Verify(g); err != nil {
		return nil, fmt.Errorf("graph %s does not verify: %v", g.Name, err)
	}
	precision := opt.Precision
	if precision == "" {
		precision = "fp32"
	}
	l := &lowering{g: g, mod: newModule(), bufs: map[*ir.Value]bufRef{}, ohwi: map[*ir.Value]bufRef{}, padw: map[paddedKey]bufRef{}, memory: opt.Memory, profile: opt.Profile}
	if err := l.mod.setPrecision(precision); err != nil {
		return nil, err
	}
	l.mod.hopper = tgt.Hopper
	l.esize = 4
	if precision == "fp16" {
		l.esize = 2
	}
	if l.memory != nil {
		l.arena = l.memory.Bytes
	}
	l.plan = &artifact.Plan{Format: artifact.FormatVersion, Model: opt.Model, Target: target, Precision: precision,
		OptLevel: opt.OptLevel, PTX: "model.ptx"}
	if len(g.Inputs) > 0 && g.Inputs[0].Type.Rank() > 0 {
		l.plan.Batch = g.Inputs[0].Type.Shape[0]
	}
	kernels := passes.Kernels(g)
	if err := l.placeValues(kernels); err != nil {
		return nil, err
	}
	for _, kern := range kernels {
		if err := l.emitGroup(kern); err != nil {
			return nil, fmt.Errorf("%s: %w", kern.Anchor.Describe(), err)
		}
		l.plan.FLOPs += kern.ModelFLOPs()
	}
	if err := l.placeOutputs(); err != nil {
		return nil, err
	}
	l.plan.Arena = l.arena
	l.plan.Weights = artifact.WeightsFile{File: "model.weights", Bytes: int64(len(l.weights)), SHA256: artifact.SHA256(l.weights)}
	return &Result{LLVM: []byte(l.mod.m.String()), Plan: l.plan, Weights: l.weights}, nil
}

// rewritePTX writes into the backend's PTX what neither llc-19 nor the
// GPU machine's clang-16 can: the launches' cluster shapes and their
// tensor map parameters passed by value.
func rewritePTX(ptx []byte, launches []artifact.Launch) ([]byte, error) {
	ptx, err := declareClusters(ptx, launches)
	if err != nil {
		return nil, err
	}
	return mapsByValue(ptx, launches)
}

// Compile lowers g and runs the NVPTX backend.
func Compile(g *ir.Graph, opt Options) (*Result, error) {
	res, err := Lower(g, opt)
	if err != nil {
		return nil, err
	}
	be, err := FindBackend()
	if err != nil {
		return nil, err
	}
	t, _ := LookupTarget(res.Plan.Target)
	ptx, err := be.Compile(res.LLVM, t)
	if err == nil {
		ptx, err = rewritePTX(ptx, res.Plan.Launches)
	}
	if err != nil {
		var be *BackendError
		if errors.As(err, &be) {
			if k := kernelAtLine(res.LLVM, be.Stderr); k != "" {
				return nil, fmt.Errorf("kernel %s: %w", k, err)
			}
		}
		return nil, err
	}
	res.PTX = ptx
	return res, nil
}

var lineRE = regexp.MustCompile(`\.ll:(\d+):`)

// kernelAtLine names the function that holds the first line the backend
// complained about.
func kernelAtLine(llvm []byte, stderr string) string {
	m := lineRE.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	line, _ := strconv.Atoi(m[1])
	name := ""
	for i, l := range strings.Split(string(llvm), "\n") {
		if i+1 > line {
			break
		}
		if strings.HasPrefix(l, "define ") {
			if at := strings.Index(l, "@"); at >= 0 {
				name = strings.SplitN(l[at+1:], "(", 2)[0]
			}
		}
	}
	return name
}

// maxIndex bounds every tensor's element count: kernels index with i32.
const maxIndex = math.MaxInt32

// placeValues lays out constants in the weights file and every other value
// in the arena (one region per value at -O0; views alias their input).
func (l *lowering) placeValues(kernels []*passes.Kernel) error {
	users := l.g.Users()
	roots := map[*ir.Node]bool{}
	for _, k := range kernels {
		roots[k.Root()] = true
	}
	outputs := map[*ir.Value]bool{}
	for _, v := range l.g.Outputs {
		outputs[v] = true
	}
	for i, v := range l.g.Inputs {
		if err := checkTensor(v); err != nil {
			return fmt.Errorf("input %s: %w", v, err)
		}
		l.bufs[v] = l.allocArena(v)
		l.plan.Inputs = append(l.plan.Inputs, l.tensorRef(l.g.ExternalInputName(i), v))
	}
	for _, n := range l.g.Nodes {
		v := n.Out
		if err := checkTensor(v); err != nil {
			return fmt.Errorf("%s: %w", n.Describe(), err)
		}
		switch {
		case n.Op == ir.OpConst:
			if len(users[v]) == 0 && !outputs[v] {
				continue
			}
			data, err := constData(n, l.esize)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Describe(), err)
			}
			// Each layout some reader wants, once (see ohwiWeights).
			plain, ohwi := outputs[v], false
			for _, u := range users[v] {
				if pi, key, ok := paddedWeights(u, v); ok {
					if _, done := l.padw[key]; !done {
						l.padw[key] = l.appendWeights(padWeights(data, v.Type.Shape, int(l.esize), pi))
					}
					continue
				}
				if ohwiWeights(u) && u.Inputs[1] == v {
					ohwi = true
				} else {
					plain = true
				}
			}
			if plain {
				l.bufs[v] = l.appendWeights(data)
			}
			if ohwi {
				l.ohwi[v] = l.appendWeights(transposeOHWI(data, v.Type.Shape, int(l.esize)))
			}
		case n.Op.View && n.Sched.Kernel == 0:
			l.bufs[v] = l.bufs[n.Inputs[0]]
		case n.Sched.Kernel != 0 && !roots[n]:
			// computed in registers inside its kernel
		default:
			l.bufs[v] = l.allocArena(v)
		}
	}
	return nil
}

// appendWeights adds data to the weights file, aligned, and returns where.
func (l *lowering) appendWeights(data []byte) bufRef {
	off := int64(len(l.weights))
	l.weights = append(l.weights, data...)
	l.weights = append(l.weights, make([]byte, artifact.Align(int64(len(l.weights)))-int64(len(l.weights)))...)
	return bufRef{artifact.BufWeights, off}
}

func checkTensor(v *ir.Value) error {
	if v.Type.Elems() > maxIndex {
		return fmt.Errorf("%s has %d elements; cnnc's kernels index tensors of up to 2^31-1", v.Type, v.Type.Elems())
	}
	return nil
}

// constData converts a constant to the bytes the kernels read: fp32, or
// fp16 (round to nearest even) when esize is 2.
func constData(n *ir.Node, esize int64) ([]byte, error) {
	t := n.Const
	if t == nil {
		return nil, fmt.Errorf("const @%s has no data", n.Blob)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("%w: a %s constant used on the GPU (cnnc's kernels compute on floats)", ErrUnsupported, t.DType)
	}
	switch {
	case esize == 4 && t.DType == ir.F32, esize == 2 && t.DType == ir.F16:
		return t.Raw, nil
	}
	vals := t.Float32s()
	raw := make([]byte, int64(len(vals))*esize)
	for i, v := range vals {
		if esize == 2 {
			binary.LittleEndian.PutUint16(raw[2*i:], ir.FloatToHalf(v))
		} else {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	}
	return raw, nil
}

// ErrUnsupported marks graphs the code generator cannot lower.
var ErrUnsupported = errors.New("unsupported")

func (l *lowering) allocArena(v *ir.Value) bufRef {
	if l.memory != nil {
		if off, ok := l.memory.Offsets[v]; ok {
			return bufRef{artifact.BufArena, off}
		}
	}
	off := l.arena
	l.arena += artifact.Align(v.Type.Elems() * l.esize)
	return bufRef{artifact.BufArena, off}
}

func (l *lowering) tensorRef(name string, v *ir.Value) artifact.TensorRef {
	dtype := "f32"
	if l.esize == 2 {
		dtype = "f16"
	}
	return artifact.TensorRef{Name: name, DType: dtype, Shape: append([]int{}, v.Type.Shape...),
		Offset: l.bufs[v].offset, Bytes: v.Type.Elems() * l.esize}
}

// placeOutputs records the outputs; one that lives in the weights (a
// constant output) is first copied into the arena.
func (l *lowering) placeOutputs() error {
	for i, v := range l.g.Outputs {
		if !v.Type.DType.IsFloat() {
			return fmt.Errorf("%w: output %s is %s; cnnc's GPU runtime returns f32 outputs", ErrUnsupported, v, v.Type.DType)
		}
		if l.bufs[v].buffer != artifact.BufArena {
			copyNode := &ir.Node{Op: ir.OpCopy, Inputs: []*ir.Value{v}, Attrs: ir.Attrs{}, Out: &ir.Value{Name: v.Name + "_copy", Type: v.Type}}
			copyNode.Out.Def = copyNode
			dst := l.allocArena(copyNode.Out)
			l.bufs[copyNode.Out] = dst
			kern := &passes.Kernel{Nodes: []*ir.Node{copyNode}, Anchor: copyNode, Inputs: []*ir.Value{v}}
			if err := l.emitKernel(kern, "copy", costmodel.MapThreads, nil, emitElementwise); err != nil {
				return err
			}
			v = copyNode.Out
		}
		l.plan.Outputs = append(l.plan.Outputs, l.tensorRef(l.g.ExternalOutputName(i), v))
	}
	return nil
}

// emitGroup lowers one fused kernel (two launches for split-K).
func (l *lowering) emitGroup(kern *passes.Kernel) error {
	for _, in := range kern.Inputs {
		if !in.Type.DType.IsFloat() {
			return fmt.Errorf("%w: input %s is %s", ErrUnsupported, in, in.Type.DType)
		}
	}
	a := kern.Anchor
	if costmodel.IsGemmAnchor(a) {
		return l.emitGemmKernel(kern)
	}
	emit, ok := emitters[a.Op]
	if !ok {
		return fmt.Errorf("%w: no GPU kernel for op %s", ErrUnsupported, a.Op.Name)
	}
	if len(kern.Prologue) > 0 {
		return fmt.Errorf("a prologue before %s is not supported", a.Op.Name)
	}
	switch a.Op {
	case ir.OpConcat, ir.OpGlobalAvgPool, ir.OpGlobalMaxPool, ir.OpSoftmax, ir.OpReduceMean, ir.OpLayerNorm:
		if len(kern.Epilogue) > 0 {
			return fmt.Errorf("an epilogue after %s is not supported", a.Op.Name)
		}
	}
	return l.emitKernel(kern, a.Op.Name, costmodel.MapThreads, nil, emit)
}

// emitGemmKernel lowers a kernel anchored on the GEMM core with its tile
// and, for split-K, the reduction kernel that applies the epilogue.
func (l *lowering) emitGemmKernel(kern *passes.Kernel) error {
	a := kern.Anchor
	t := costmodel.TileFromInts(a.Sched.Tile)
	ways := max(a.Sched.SplitK, 1)
	cluster := a.Sched.Reduce == ir.ReduceCluster
	if cluster && !costmodel.ClusterReduce(t, ways, l.mod.hopper) {
		return fmt.Errorf("%w: reduce=cluster with tile %v split %d: clusters add the splits of warpgroup tiles, 2 to %d of them, on sm_90a",
			ErrUnsupported, t, ways, costmodel.MaxClusterBlocks)
	}
	pi, padded := costmodel.PaddedInputOf(a)
	var ws *bufRef
	size, paddedAt := costmodel.WorkspaceBytes(a)
	if size > 0 {
		off := int64(0)
		if l.memory != nil {
			off = l.memory.Workspace[a]
		} else {
			off = l.arena
			l.arena += artifact.Align(size)
		}
		ws = &bufRef{artifact.BufArena, off}
	}
	// The workspace is the kernels' last param: split-K partial sums from
	// its start, a padded input at paddedAt.
	wsParam := func(c *nodeKernel) value.Value { return c.k.params[len(c.k.params)-1] }
	paddedIn := func(c *nodeKernel) value.Value { return c.k.at(wsParam(c), ci(int(paddedAt/l.esize))) }
	var launches []string
	if padded && len(kern.Prologue) > 0 {
		// (Fusion gives prologues to 1x1 convolutions and Gemm only.)
		return fmt.Errorf("a prologue before a padded-input convolution (%s) is not supported", a.Describe())
	}
	if padded {
		launches = append(launches, "pad")
		err := l.emitKernel(kern, "", costmodel.MapThreads, ws, func(c *nodeKernel) (launchShape, error) {
			c.describe(fmt.Sprintf("conv%dx%d_pad_input", a.Inputs[1].Type.Shape[2], a.Inputs[1].Type.Shape[3]))
			c.bare = true
			return emitPadInput(c, pi, paddedIn(c)), nil
		})
		if err != nil {
			return err
		}
	}
	main := func(c *nodeKernel) (launchShape, error) {
		p, desc, err := gemmProblemOf(c)
		if err != nil {
			return launchShape{}, err
		}
		if padded {
			p = paddedProblem(c, p, pi, paddedIn(c))
		}
		c.describe(desc)
		sk := splitK{Ways: ways, Cluster: cluster}
		if ways > 1 {
			sk.Slice = costmodel.KSlice(p.K, ways, t.BK)
		}
		if cluster {
			c.k.cluster = ways
		} else if ways > 1 {
			sk.Workspace = c.k.asFloatPtr(wsParam(c))
		}
		if t.TensorCore() {
			if l.esize != 2 {
				return launchShape{}, fmt.Errorf("tensor-core tile %v needs --precision fp16", t)
			}
			c.describe(desc + "_tc")
			persist := a.Sched.Persist
			if c.oneTile {
				persist = 0
			}
			return emitGemmTC(c.k, p, t, sk, persist), nil
		}
		return emitGemm(c.k, p, t, sk), nil
	}
	launches = append(launches, "gemm")
	if err := l.emitKernel(kern, "", t.Threads(), ws, main); err != nil {
		return err
	}
	if ways > 1 && !cluster {
		launches = append(launches, "reduce")
		err := l.emitKernel(kern, "", costmodel.MapThreads, ws, func(c *nodeKernel) (launchShape, error) {
			p, desc, err := gemmProblemOf(c)
			if err != nil {
				return launchShape{}, err
			}
			c.describe(desc + "_splitk_reduce")
			return emitSplitKReduce(c.k, p, splitK{Ways: ways, Workspace: c.k.asFloatPtr(wsParam(c))}), nil
		})
		if err != nil {
			return err
		}
	}
	// The model FLOPs are the GEMM launch's; each launch has its own
	// traffic and prediction (passes.Kernel.Launches lists them in this
	// order).
	first := len(l.plan.Launches) - len(launches)
	var preds []float64
	if l.profile.SMs > 0 {
		preds = kern.PredictLaunches(l.profile)
	}
	costs := kern.Launches()
	for i, what := range launches {
		ln := &l.plan.Launches[first+i]
		if what != "gemm" {
			ln.FLOPs = 0
		}
		if len(costs) == len(launches) {
			ln.Bytes = costs[i].DRAMBytes(l.esize == 2)
		}
		if i < len(preds) {
			ln.PredictedNs = preds[i]
		}
	}
	return nil
}

// newNodeKernel makes the kernel function name for kern's launch: a
// float* per external input (read-only), one for the output and, with
// ws, one for a workspace.
func (l *lowering) newNodeKernel(kern *passes.Kernel, desc, name string, threads int, ws *bufRef) *nodeKernel {
	nparams := len(kern.Inputs) + 1
	if ws != nil {
		nparams++
	}
	k := l.mod.makeKernel(name, nparams, threads)
	// The inputs are only read (plan-memory never gives a kernel's output
	// the space of a value it reads): with noalias, the NVPTX backend
	// loads them through the read-only path (ld.global.nc), which ptxas
	// may move past the kernel's stores.
	for _, p := range k.params[:len(kern.Inputs)] {
		p.Attrs = append(p.Attrs, enum.ParamAttrReadOnly)
	}
	a := kern.Anchor
	c := &nodeKernel{k: k, n: a, out: k.params[len(kern.Inputs)], desc: desc, params: map[*ir.Value]value.Value{},
		prologue: kern.Prologue, epilogue: kern.Epilogue, partner: kern.Partner}
	for i, in := range kern.Inputs {
		c.params[in] = k.params[i]
	}
	for _, in := range a.Inputs {
		c.in = append(c.in, c.params[in]) // nil where the prologue computes it
	}
	return c
}

// emitKernel makes one kernel for kern: a float* per external input, one
// for the output and, with ws, one for a workspace, then the tensor maps
// its GEMM core asked for (tma.go); it appends the launch.
func (l *lowering) emitKernel(kern *passes.Kernel, desc string, threads int, ws *bufRef, emit func(*nodeKernel) (launchShape, error)) error {
	idx := len(l.plan.Launches)
	c := l.newNodeKernel(kern, desc, fmt.Sprintf("k%03d", idx), threads, ws)
	k, a, root := c.k, kern.Anchor, kern.Root()
	shape, err := emit(c)
	if err != nil {
		return err
	}
	k.finish()
	name := fmt.Sprintf("k%03d_%s", idx, sanitizeKernelName(c.desc))
	for _, e := range kern.Epilogue {
		if !c.bare {
			name += "_" + sanitizeKernelName(e.Op.Name)
		}
	}
	if len(name) > 60 {
		name = name[:60]
	}
	k.fn.SetName(name)
	launch := artifact.Launch{Kernel: name, Grid: shape.grid, Block: [3]int{shape.block, 1, 1},
		SharedBytes: shape.shared, ClusterBlocks: k.cluster, PersistTiles: shape.persistTiles, FLOPs: kern.ModelFLOPs(), Bytes: kern.MinBytes() * l.esize / 4}
	if shape.persistTiles > 0 {
		// The same kernel one tile a block, for the runtime to launch
		// where the persistent one's registers cost blocks an SM or its
		// tiles fit one wave (artifact.Launch.OneTile).
		c1 := l.newNodeKernel(kern, desc, name+"_1", threads, ws)
		c1.oneTile = true
		shape1, err := emit(c1)
		if err != nil {
			return err
		}
		c1.k.finish()
		if shape1.persistTiles != 0 || shape1.shared != shape.shared || len(c1.k.maps) != len(k.maps) {
			return fmt.Errorf("%s: the one-tile kernel differs from the persistent one in more than its grid", name)
		}
		launch.OneTile = &artifact.OneTile{Kernel: name + "_1", Grid: shape1.grid}
	}
	for _, n := range kern.Nodes {
		launch.Ops = append(launch.Ops, n.Op.Name)
		if n.Origin != "" {
			launch.Layers = append(launch.Layers, n.Origin)
		}
	}
	if l.profile.SMs > 0 && !costmodel.IsGemmAnchor(a) {
		// (emitGemmKernel sets each of its launches' own.)
		launch.PredictedNs = kern.PredictLaunches(l.profile)[0]
	}
	for _, in := range kern.Inputs {
		b := l.bufs[in]
		if ohwiWeights(a) && in == a.Inputs[1] {
			b = l.ohwi[in]
		}
		if _, key, ok := paddedWeights(a, in); ok {
			b = l.padw[key]
		}
		launch.Args = append(launch.Args, artifact.Arg{Buffer: b.buffer, Offset: b.offset})
	}
	out := l.bufs[root.Out]
	launch.Args = append(launch.Args, artifact.Arg{Buffer: out.buffer, Offset: out.offset})
	if ws != nil {
		launch.Args = append(launch.Args, artifact.Arg{Buffer: ws.buffer, Offset: ws.offset})
	}
	// The tensor maps, each over the buffer of the parameter it views.
	for _, m := range k.maps {
		spec := m.spec
		spec.Buffer, spec.Offset = launch.Args[m.of].Buffer, launch.Args[m.of].Offset
		launch.Args = append(launch.Args, artifact.Arg{Buffer: artifact.BufTensorMaps, Map: &spec})
	}
	l.plan.Launches = append(l.plan.Launches, launch)
	return nil
}

func sanitizeKernelName(s string) string {
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Build runs the pass pipeline on g (in place) and compiles the result,
// using plan-memory's layout and the pipeline's device profile.
func Build(g *ir.Graph, opt Options, popt passes.Options) (*Result, *passes.Context, error) {
	popt.OptLevel = opt.OptLevel
	popt.Precision = opt.Precision
	if t, err := LookupTarget(cmp.Or(opt.Target, DefaultTarget)); err == nil {
		popt.Profile.Wgmma = t.Hopper
	}
	popt.Profile.HalfStorage = opt.Precision == "fp16"
	if popt.Model == "" {
		popt.Model = opt.Model
	}
	pc, err := passes.Run(g, popt)
	if err != nil {
		return nil, nil, err
	}
	opt.Memory = pc.Memory
	opt.Profile = popt.Profile
	res, err := Compile(g, opt)
	return res, pc, err
}

// Write writes the artifact beside ptxPath (model.ptx, model.plan.json,
// model.weights, and model.ll with emitLLVM) all or nothing, naming the
// files in the plan.
func (r *Result) Write(ptxPath string, emitLLVM bool) error {
	planPath, weightsPath := artifact.Paths(ptxPath)
	r.Plan.PTX = filepath.Base(ptxPath)
	r.Plan.Weights.File = filepath.Base(weightsPath)
	plan, err := r.Plan.Encode()
	if err != nil {
		return err
	}
	paths := []string{ptxPath, planPath, weightsPath}
	data := [][]byte{r.PTX, plan, r.Weights}
	if emitLLVM {
		paths = append(paths, strings.TrimSuffix(ptxPath, filepath.Ext(ptxPath))+".ll")
		data = append(data, r.LLVM)
	}
	return tensorfile.WriteFilesAtomic(paths, data)
}
