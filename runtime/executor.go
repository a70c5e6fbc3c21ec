// Package runtime runs a compiled model on the GPU: it loads the PTX (JIT
// to the card), allocates one arena for every activation and one buffer for
// the weights, uploads the weights once, and runs or times the plan's
// launch list, directly or as a captured CUDA graph.
package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"

	"cnnc/artifact"
	"cnnc/ir"
	"cnnc/runtime/cuda"
)

// ErrBadArtifact is matched (errors.Is) by the errors of compiled-model
// files that are missing, malformed or not from the same compile: the
// user's input, not a device failure.
var ErrBadArtifact = errors.New("bad compiled model")

type artifactError struct{ err error }

func (e *artifactError) Error() string        { return e.err.Error() }
func (e *artifactError) Unwrap() error        { return e.err }
func (e *artifactError) Is(target error) bool { return target == ErrBadArtifact }

func badArtifact(err error) error { return &artifactError{err} }

// Artifact is a compiled model's three files, read and checked on the
// host (no GPU needed).
type Artifact struct {
	PTXPath  string
	PlanPath string
	Plan     *artifact.Plan
	PTX      []byte
	Weights  []byte
}

// entryRE finds the kernels a PTX module defines.
var entryRE = regexp.MustCompile(`\.entry\s+([A-Za-z_$%][A-Za-z0-9_$]*)`)

// ReadArtifact reads model.ptx and the plan and weights beside it: the
// plan must validate, the weights match its size and SHA-256, and every
// kernel the plan launches be defined in the PTX. Its errors match
// ErrBadArtifact.
func ReadArtifact(ptxPath string) (*Artifact, error) {
	planPath, _ := artifact.Paths(ptxPath)
	ptx, err := os.ReadFile(ptxPath)
	if err != nil {
		return nil, badArtifact(err)
	}
	plan, err := artifact.ReadPlan(planPath)
	if err != nil {
		return nil, badArtifact(err)
	}
	weights, err := plan.ReadWeights(planPath)
	if err != nil {
		return nil, badArtifact(err)
	}
	entries := map[string]bool{}
	for _, m := range entryRE.FindAllSubmatch(ptx, -1) {
		entries[string(m[1])] = true
	}
	for i, l := range plan.Launches {
		if !entries[l.Kernel] {
			return nil, badArtifact(fmt.Errorf("%s: launch %d runs kernel %s, which %s does not define", planPath, i, l.Kernel, ptxPath))
		}
	}
	return &Artifact{PTXPath: ptxPath, PlanPath: planPath, Plan: plan, PTX: ptx, Weights: weights}, nil
}

// Executor runs one compiled model on one device. Its methods are not
// safe for concurrent use.
type Executor struct {
	dev      *cuda.Device
	art      *Artifact
	module   *cuda.Module
	arena    cuda.DevicePtr
	weights  cuda.DevicePtr
	stream   cuda.Stream
	launches []launch
	graph    cuda.GraphExec // the launch list captured, on first use
	// persistent counts the persistent launches that run their
	// persistent kernel (the others of them their one-tile kernel).
	persistent, persistentOf int
	spin                     *spinKernel // loaded on first TimeKernels
}

// launch is one entry of the launch list, resolved on the device.
type launch struct {
	fn          cuda.Function
	grid, block cuda.Dim3
	shared      int
	params      *cuda.Params
}

// defaultSharedBytes is the dynamic shared memory a kernel may use without
// opting in.
const defaultSharedBytes = 48 << 10

// persistentLaunch is the kernel and grid that run persistent launch l
// on a card of sms SMs, and whether that kernel is the persistent one:
// the persistent kernel p with as many blocks as the card holds at once
// (at most its tiles), unless its one-tile kernel one (if any) holds more
// blocks an SM (the persistent kernel keeps more registers alive) or
// fits every tile in one wave, where nothing is left to overlap: then
// one with its own grid.
func persistentLaunch(sms int, p, one cuda.Function, l artifact.Launch) (cuda.Function, cuda.Dim3, bool, error) {
	threads := l.Block[0] * l.Block[1] * l.Block[2]
	per, err := p.MaxActiveBlocks(threads, l.SharedBytes)
	if err != nil {
		return p, cuda.Dim3{}, false, err
	}
	if l.OneTile != nil {
		per1, err := one.MaxActiveBlocks(threads, l.SharedBytes)
		if err != nil {
			return p, cuda.Dim3{}, false, err
		}
		if per < per1 || l.PersistTiles <= sms*per1 {
			g := l.OneTile.Grid
			return one, cuda.Dim3{X: g[0], Y: g[1], Z: g[2]}, false, nil
		}
	}
	if per < 1 {
		return p, cuda.Dim3{}, false, fmt.Errorf("kernel %q: no block of %d bytes of shared memory fits an SM", l.Kernel, l.SharedBytes)
	}
	return p, cuda.Dim3{X: min(l.PersistTiles, sms*per), Y: 1, Z: 1}, true, nil
}

// Load reads the compiled model at ptxPath (see ReadArtifact) and loads it
// onto dev.
func Load(dev *cuda.Device, ptxPath string) (*Executor, error) {
	a, err := ReadArtifact(ptxPath)
	if err != nil {
		return nil, err
	}
	return LoadArtifact(dev, a)
}

// LoadArtifact JIT-compiles the PTX, resolves every launch's kernel once,
// opts kernels into more than 48 KiB of dynamic shared memory where the
// plan asks for it, allocates the arena (zeroed) and the weights buffer
// and uploads the weights. On error everything it made is freed.
func LoadArtifact(dev *cuda.Device, a *Artifact) (_ *Executor, err error) {
	e := &Executor{dev: dev, art: a}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()
	if e.module, err = dev.LoadModule(a.PTX); err != nil {
		return nil, fmt.Errorf("%s: %w", a.PTXPath, err)
	}
	p := a.Plan
	fns := map[string]cuda.Function{}
	maxShared := map[string]int{}
	for i, l := range p.Launches {
		fn, ok := fns[l.Kernel]
		if !ok {
			if fn, err = e.module.Function(l.Kernel); err != nil {
				return nil, fmt.Errorf("launch %d: %w", i, err)
			}
			fns[l.Kernel] = fn
		}
		maxShared[l.Kernel] = max(maxShared[l.Kernel], l.SharedBytes)
		if o := l.OneTile; o != nil {
			if _, ok := fns[o.Kernel]; !ok {
				if fns[o.Kernel], err = e.module.Function(o.Kernel); err != nil {
					return nil, fmt.Errorf("launch %d: %w", i, err)
				}
			}
			maxShared[o.Kernel] = max(maxShared[o.Kernel], l.SharedBytes)
		}
		e.launches = append(e.launches, launch{
			fn:     fn,
			grid:   cuda.Dim3{X: l.Grid[0], Y: l.Grid[1], Z: l.Grid[2]},
			block:  cuda.Dim3{X: l.Block[0], Y: l.Block[1], Z: l.Block[2]},
			shared: l.SharedBytes,
		})
	}
	for name, bytes := range maxShared {
		if bytes > defaultSharedBytes {
			if err = fns[name].SetMaxDynamicShared(bytes); err != nil {
				return nil, err
			}
		}
	}
	// A persistent kernel gets one block per slot of this card, or gives
	// way to its one-tile kernel (persistentLaunch).
	sms := 0
	for i, l := range p.Launches {
		if l.PersistTiles == 0 {
			continue
		}
		if sms == 0 {
			if sms, err = dev.Attribute(cuda.AttrMultiprocessorCount); err != nil {
				return nil, err
			}
		}
		var one cuda.Function
		if l.OneTile != nil {
			one = fns[l.OneTile.Kernel]
		}
		fn, grid, persistent, err := persistentLaunch(sms, e.launches[i].fn, one, l)
		if err != nil {
			return nil, fmt.Errorf("launch %d: %w", i, err)
		}
		e.launches[i].fn, e.launches[i].grid = fn, grid
		e.persistentOf++
		if persistent {
			e.persistent++
		}
	}
	if e.arena, err = dev.Alloc(max(p.Arena, 1)); err != nil {
		return nil, fmt.Errorf("arena of %d bytes: %w", p.Arena, err)
	}
	if err = dev.Memset(e.arena, 0, p.Arena); err != nil {
		return nil, err
	}
	if e.weights, err = dev.Alloc(max(int64(len(a.Weights)), 1)); err != nil {
		return nil, fmt.Errorf("weights of %d bytes: %w", len(a.Weights), err)
	}
	if err = dev.CopyHtoD(e.weights, a.Weights); err != nil {
		return nil, err
	}
	for i, l := range p.Launches {
		maps, err := e.tensorMaps(i)
		if err != nil {
			return nil, err
		}
		e.launches[i].params = kernelParams(l.Args, e.arena, e.weights, maps)
	}
	if e.stream, err = dev.CreateStream(); err != nil {
		return nil, err
	}
	return e, nil
}

// kernelParams makes a launch's parameters: each argument is the base of
// its buffer plus its offset, a 64-bit device pointer, but for a tensor
// map, passed by value: the next of maps, encoded in argument order.
func kernelParams(args []artifact.Arg, arena, weights cuda.DevicePtr, maps []cuda.TensorMap) *cuda.Params {
	p := cuda.NewParams(len(args))
	for j, a := range args {
		switch a.Buffer {
		case artifact.BufTensorMaps:
			p.SetBytes(j, maps[0][:])
			maps = maps[1:]
		case artifact.BufWeights:
			p.SetPtr(j, weights+cuda.DevicePtr(a.Offset))
		default:
			p.SetPtr(j, arena+cuda.DevicePtr(a.Offset))
		}
	}
	return p
}

// tensorMaps encodes launch i's tensor maps over the arena and weights,
// in argument order.
func (e *Executor) tensorMaps(i int) ([]cuda.TensorMap, error) {
	l := e.art.Plan.Launches[i]
	var out []cuda.TensorMap
	for j, a := range l.Args {
		if a.Buffer != artifact.BufTensorMaps {
			continue
		}
		m, err := e.dev.EncodeTensorMap(e.mapDesc(a.Map))
		if err != nil {
			err = fmt.Errorf("%s: launch %d (%s) argument %d: %w", e.art.PlanPath, i, l.Kernel, j, err)
			var ce *cuda.Error
			if errors.As(err, &ce) && ce.Code == cuda.ErrInvalidValue {
				// The driver rejects the plan's map: the input's fault.
				err = badArtifact(err)
			}
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// mapDesc is the driver's description of m over the executor's buffers.
func (e *Executor) mapDesc(m *artifact.TensorMap) cuda.TensorMapDesc {
	base := e.arena
	if m.Buffer == artifact.BufWeights {
		base = e.weights
	}
	d := cuda.TensorMapDesc{Addr: base + cuda.DevicePtr(m.Offset), Swizzle: m.Swizzle}
	for _, x := range m.Dims {
		d.Dims = append(d.Dims, uint64(x))
	}
	for _, x := range m.Strides {
		d.Strides = append(d.Strides, uint64(x))
	}
	for _, x := range m.Box {
		d.Box = append(d.Box, uint32(x))
	}
	for _, x := range m.ElementStrides {
		d.ElementStrides = append(d.ElementStrides, uint32(x))
	}
	if c := m.Im2col; c != nil {
		for _, x := range c.Lower {
			d.Lower = append(d.Lower, int32(x))
		}
		for _, x := range c.Upper {
			d.Upper = append(d.Upper, int32(x))
		}
		d.Channels, d.Pixels = uint32(c.Channels), uint32(c.Pixels)
	}
	return d
}

// Persistent says how many of the plan's persistent launches run their
// persistent kernel on this card, of how many there are (the others run
// their one-tile kernel: see persistentLaunch).
func (e *Executor) Persistent() (running, of int) { return e.persistent, e.persistentOf }

// Plan is the model's plan.
func (e *Executor) Plan() *artifact.Plan { return e.art.Plan }

// Artifact is the model's files as read.
func (e *Executor) Artifact() *Artifact { return e.art }

// Close waits for queued work and frees everything the executor made.
func (e *Executor) Close() error {
	var errs []error
	if e.stream != 0 {
		errs = append(errs, e.dev.SyncStream(e.stream))
	}
	errs = append(errs, e.dev.DestroyGraphExec(e.graph))
	e.graph = 0
	errs = append(errs, e.dev.DestroyStream(e.stream))
	e.stream = 0
	errs = append(errs, e.dev.Free(e.arena), e.dev.Free(e.weights))
	e.arena, e.weights = 0, 0
	errs = append(errs, e.module.Unload())
	if e.spin != nil {
		errs = append(errs, e.spin.module.Unload())
		e.spin = nil
	}
	return errors.Join(errs...)
}

// Run copies inputs (one per plan input, in plan order) into the arena,
// runs the launch list on the executor's stream, waits, and returns the
// outputs in plan order. Only fp32 plans can be run this way for now.
func (e *Executor) Run(inputs [][]float32) ([][]float32, error) {
	p := e.art.Plan
	if err := checkInputs(p, inputs); err != nil {
		return nil, err
	}
	half := p.Precision == "fp16"
	raw := make([][]byte, len(p.Outputs))
	for i, o := range p.Outputs {
		raw[i] = make([]byte, o.Bytes)
	}
	err := e.dev.Batch(func(b *cuda.Batch) error {
		for i, in := range p.Inputs {
			data := cuda.AsBytes(inputs[i])
			if half {
				data = toHalf(inputs[i])
			}
			if err := b.CopyHtoD(e.arena+cuda.DevicePtr(in.Offset), data); err != nil {
				return fmt.Errorf("input %q: %w", in.Name, err)
			}
		}
		if err := e.enqueue(b); err != nil {
			return err
		}
		if err := b.SyncStream(e.stream); err != nil {
			return err
		}
		for i, o := range p.Outputs {
			if err := b.CopyDtoH(raw[i], e.arena+cuda.DevicePtr(o.Offset)); err != nil {
				return fmt.Errorf("output %q: %w", o.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	outs := make([][]float32, len(raw))
	for i, r := range raw {
		if half {
			outs[i] = fromHalf(r)
		} else {
			outs[i] = fromFloat(r)
		}
	}
	return outs, nil
}

// enqueue queues the launch list on the executor's stream.
func (e *Executor) enqueue(b *cuda.Batch) error {
	for i, l := range e.launches {
		if err := b.Launch(l.fn, l.grid, l.block, l.shared, e.stream, l.params); err != nil {
			return fmt.Errorf("launch %d: %w", i, err)
		}
	}
	return nil
}

// elemBytes is the size of one tensor element of a plan's precision.
func elemBytes(p *artifact.Plan) (int64, error) {
	switch p.Precision {
	case "fp32":
		return 4, nil
	case "fp16":
		return 2, nil
	}
	return 0, fmt.Errorf("plan precision %q, want fp32 or fp16", p.Precision)
}

// toHalf converts float32 values to IEEE half bits, little-endian.
func toHalf(v []float32) []byte {
	out := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(out[2*i:], ir.FloatToHalf(x))
	}
	return out
}

func fromHalf(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = ir.HalfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func fromFloat(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func checkInputs(p *artifact.Plan, inputs [][]float32) error {
	esize, err := elemBytes(p)
	if err != nil {
		return err
	}
	if len(inputs) != len(p.Inputs) {
		return fmt.Errorf("got %d inputs, the model has %d (%s)", len(inputs), len(p.Inputs), tensorNames(p.Inputs))
	}
	for _, group := range []struct {
		kind string
		refs []artifact.TensorRef
	}{{"input", p.Inputs}, {"output", p.Outputs}} {
		for _, t := range group.refs {
			if n := elems(t.Shape); n < 0 || int64(n)*esize != t.Bytes {
				return fmt.Errorf("plan: %s %q is %s%v in %d bytes, want %d", group.kind, t.Name, t.DType, t.Shape, t.Bytes, int64(n)*esize)
			}
		}
	}
	for i, t := range p.Inputs {
		if n := elems(t.Shape); len(inputs[i]) != n {
			return fmt.Errorf("input %q: got %d values, want f32%v (%d values)", t.Name, len(inputs[i]), t.Shape, n)
		}
	}
	return nil
}

// elems is the element count of a shape, -1 if a dimension is negative.
func elems(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

func tensorNames(ts []artifact.TensorRef) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", t.Name)
	}
	return s
}
