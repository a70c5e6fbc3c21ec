// Package codegen lowers a verified IR graph to one LLVM module with one
// kernel per launch (github.com/llir/llvm), compiles it to PTX with an
// NVPTX backend, and writes the plan and weights the runtime executes.
package codegen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/llir/llvm/ir/value"

	"cnnc/artifact"
	"cnnc/ir"
)

// Options control a compile.
type Options struct {
	Target   string // sm_80 (default), sm_86, sm_89, sm_90
	Model    string // the source model's name, recorded in the plan
	OptLevel int
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
}

// nodeKernel is the state of lowering one node to one kernel.
type nodeKernel struct {
	k    *kernel
	n    *ir.Node
	in   []value.Value // kernel params of the inputs
	out  value.Value   // kernel param of the output
	desc string        // what the kernel name says it computes
}

func (c *nodeKernel) describe(s string) { c.desc = s }

// emitters is the lowering table: op -> kernel emitter.
var emitters map[*ir.OpInfo]func(*nodeKernel) (launchShape, error)

func init() {
	emitters = map[*ir.OpInfo]func(*nodeKernel) (launchShape, error){
		ir.OpConv2D:        emitConv,
		ir.OpGemm:          emitGemmOp,
		ir.OpMatMul:        emitMatMul,
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

// threadsPerBlock of every non-GEMM kernel.
const threadsPerBlock = 256

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
	weights []byte
	arena   int64
	plan    *artifact.Plan
}

// Lower builds the LLVM module, plan and weights for g without running the
// backend; Compile also produces PTX.
func Lower(g *ir.Graph, opt Options) (*Result, error) {
	target := opt.Target
	if target == "" {
		target = DefaultTarget
	}
	if _, err := LookupTarget(target); err != nil {
		return nil, err
	}
	if err := ir.Verify(g); err != nil {
		return nil, fmt.Errorf("graph %s does not verify: %v", g.Name, err)
	}
	l := &lowering{g: g, mod: newModule(), bufs: map[*ir.Value]bufRef{}}
	l.plan = &artifact.Plan{Format: artifact.FormatVersion, Model: opt.Model, Target: target, Precision: "fp32",
		OptLevel: opt.OptLevel, PTX: "model.ptx"}
	if len(g.Inputs) > 0 && g.Inputs[0].Type.Rank() > 0 {
		l.plan.Batch = g.Inputs[0].Type.Shape[0]
	}
	if err := l.placeValues(); err != nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		if n.Op == ir.OpConst || n.Op.View {
			continue
		}
		if err := l.emitNode(n); err != nil {
			return nil, fmt.Errorf("%s: %w", n.Describe(), err)
		}
		l.plan.FLOPs += n.FLOPs()
	}
	if err := l.placeOutputs(); err != nil {
		return nil, err
	}
	l.plan.Arena = l.arena
	l.plan.Weights = artifact.WeightsFile{File: "model.weights", Bytes: int64(len(l.weights)), SHA256: artifact.SHA256(l.weights)}
	return &Result{LLVM: []byte(l.mod.m.String()), Plan: l.plan, Weights: l.weights}, nil
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
func (l *lowering) placeValues() error {
	users := l.g.Users()
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
			data, err := constData(n)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Describe(), err)
			}
			off := int64(len(l.weights))
			l.weights = append(l.weights, data...)
			l.weights = append(l.weights, make([]byte, artifact.Align(int64(len(l.weights)))-int64(len(l.weights)))...)
			l.bufs[v] = bufRef{artifact.BufWeights, off}
		case n.Op.View:
			l.bufs[v] = l.bufs[n.Inputs[0]]
		default:
			l.bufs[v] = l.allocArena(v)
		}
	}
	return nil
}

func checkTensor(v *ir.Value) error {
	if v.Type.Elems() > maxIndex {
		return fmt.Errorf("%s has %d elements; cnnc's kernels index tensors of up to 2^31-1", v.Type, v.Type.Elems())
	}
	return nil
}

// constData converts a constant to the fp32 bytes the kernels read.
func constData(n *ir.Node) ([]byte, error) {
	t := n.Const
	if t == nil {
		return nil, fmt.Errorf("const @%s has no data", n.Blob)
	}
	switch t.DType {
	case ir.F32:
		return t.Raw, nil
	case ir.F16:
		vals := t.Float32s()
		raw := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%w: a %s constant used on the GPU (cnnc's kernels compute f32)", ErrUnsupported, t.DType)
}

// ErrUnsupported marks graphs the code generator cannot lower.
var ErrUnsupported = errors.New("unsupported")

func (l *lowering) allocArena(v *ir.Value) bufRef {
	off := l.arena
	l.arena += artifact.Align(v.Type.Elems() * 4)
	return bufRef{artifact.BufArena, off}
}

func (l *lowering) tensorRef(name string, v *ir.Value) artifact.TensorRef {
	return artifact.TensorRef{Name: name, DType: "f32", Shape: append([]int{}, v.Type.Shape...),
		Offset: l.bufs[v].offset, Bytes: v.Type.Elems() * 4}
}

// placeOutputs records the outputs; one that lives in the weights (a
// constant output) is first copied into the arena.
func (l *lowering) placeOutputs() error {
	for i, v := range l.g.Outputs {
		if !v.Type.DType.IsFloat() {
			return fmt.Errorf("%w: output %s is %s; cnnc's GPU runtime returns f32 outputs", ErrUnsupported, v, v.Type.DType)
		}
		if l.bufs[v].buffer != artifact.BufArena {
			copyNode := &ir.Node{Op: ir.OpRelu, Inputs: []*ir.Value{v}, Out: &ir.Value{Name: v.Name + "_copy", Type: v.Type}}
			dst := l.allocArena(copyNode.Out)
			l.bufs[copyNode.Out] = dst
			if err := l.emitKernel(copyNode, "copy", []*ir.Value{v}, func(c *nodeKernel) (launchShape, error) { return emitCopy(c), nil }); err != nil {
				return err
			}
			l.plan.Launches[len(l.plan.Launches)-1].Ops = []string{"copy"}
			v = copyNode.Out
		}
		l.plan.Outputs = append(l.plan.Outputs, l.tensorRef(l.g.ExternalOutputName(i), v))
	}
	return nil
}

func (l *lowering) emitNode(n *ir.Node) error {
	emit, ok := emitters[n.Op]
	if !ok {
		return fmt.Errorf("%w: no GPU kernel for op %s", ErrUnsupported, n.Op.Name)
	}
	for _, in := range n.Inputs {
		if !in.Type.DType.IsFloat() {
			return fmt.Errorf("%w: input %s is %s", ErrUnsupported, in, in.Type.DType)
		}
	}
	return l.emitKernel(n, n.Op.Name, n.Inputs, emit)
}

// emitKernel makes the kernel for n with one float* per input and one for
// the output, and appends its launch.
func (l *lowering) emitKernel(n *ir.Node, desc string, inputs []*ir.Value, emit func(*nodeKernel) (launchShape, error)) error {
	idx := len(l.plan.Launches)
	threads := threadsPerBlock
	if isGemm(n) {
		threads = defaultTile.threads()
	}
	k := l.mod.makeKernel(fmt.Sprintf("k%03d", idx), len(inputs)+1, threads)
	c := &nodeKernel{k: k, n: n, out: k.params[len(inputs)], desc: desc}
	for i := range inputs {
		c.in = append(c.in, k.params[i])
	}
	shape, err := emit(c)
	if err != nil {
		return err
	}
	k.finish()
	name := fmt.Sprintf("k%03d_%s", idx, sanitizeKernelName(c.desc))
	k.fn.SetName(name)
	launch := artifact.Launch{Kernel: name, Grid: shape.grid, Block: [3]int{shape.block, 1, 1},
		SharedBytes: shape.shared, FLOPs: n.FLOPs(), Bytes: n.MinBytes(), Ops: []string{n.Op.Name}}
	if n.Origin != "" {
		launch.Layers = []string{n.Origin}
	}
	for _, in := range inputs {
		b := l.bufs[in]
		launch.Args = append(launch.Args, artifact.Arg{Buffer: b.buffer, Offset: b.offset})
	}
	out := l.bufs[n.Out]
	launch.Args = append(launch.Args, artifact.Arg{Buffer: out.buffer, Offset: out.offset})
	l.plan.Launches = append(l.plan.Launches, launch)
	return nil
}

func isGemm(n *ir.Node) bool {
	switch n.Op {
	case ir.OpGemm, ir.OpMatMul:
		return true
	case ir.OpConv2D:
		return !(n.Inputs[1].Type.Shape[1] == 1 && n.Int("group") > 1)
	}
	return false
}

func sanitizeKernelName(s string) string {
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			return r
		}
		return '_'
	}, s)
}
