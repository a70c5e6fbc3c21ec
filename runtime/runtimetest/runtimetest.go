// Package runtimetest writes small compiled models by hand (PTX, plan and
// weights) for the tests of the runtime and of `cnnc run`, so that they do
// not depend on the compiler.
package runtimetest

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"cnnc/artifact"
)

// VectorAddKernel is the one kernel of VectorAddPTX.
const VectorAddKernel = "vadd"

// VectorAddBlock is the block size the models here launch vadd with.
const VectorAddBlock = 256

// VectorAddPTX holds vadd(a, b, c): c[i] = a[i] + b[i] for
// i = ctaid.x*ntid.x + tid.x. It has no bounds check: the grid must cover
// the arrays exactly. (The form is what LLVM's NVPTX backend emits for it.)
const VectorAddPTX = `//
// vadd: c[i] = a[i] + b[i], one thread per element
//
.version 7.0
.target sm_80
.address_size 64

.visible .entry vadd(
	.param .u64 vadd_param_0,
	.param .u64 vadd_param_1,
	.param .u64 vadd_param_2
)
{
	.reg .b32 	%r<5>;
	.reg .f32 	%f<4>;
	.reg .b64 	%rd<8>;

	ld.param.u64 	%rd1, [vadd_param_0];
	ld.param.u64 	%rd2, [vadd_param_1];
	ld.param.u64 	%rd3, [vadd_param_2];
	mov.u32 	%r1, %tid.x;
	mov.u32 	%r2, %ctaid.x;
	mov.u32 	%r3, %ntid.x;
	mad.lo.s32 	%r4, %r2, %r3, %r1;
	mul.wide.u32 	%rd4, %r4, 4;
	add.s64 	%rd5, %rd1, %rd4;
	add.s64 	%rd6, %rd2, %rd4;
	add.s64 	%rd7, %rd3, %rd4;
	ld.global.f32 	%f1, [%rd5];
	ld.global.f32 	%f2, [%rd6];
	add.rn.f32 	%f3, %f1, %f2;
	st.global.f32 	[%rd7], %f3;
	ret;
}
`

// BrokenPTX fails to JIT-compile: it stores an undeclared register.
const BrokenPTX = `.version 7.0
.target sm_80
.address_size 64

.visible .entry broken(
	.param .u64 broken_param_0
)
{
	.reg .b64 	%rd<2>;

	ld.param.u64 	%rd1, [broken_param_0];
	st.global.f32 	[%rd1], %f9;
	ret;
}
`

// Model is a compiled model written by WriteVectorAddModel.
type Model struct {
	PTXPath string
	Plan    *artifact.Plan
	Weights []float32 // w
}

// WriteVectorAddModel writes model.ptx, model.plan.json and model.weights
// into dir for a model of one input x of n floats (n a multiple of
// VectorAddBlock) and weights w drawn from seed, computing y = (x + w) + x
// in two launches through an intermediate t, so that the order of the
// launch list and both buffers matter.
func WriteVectorAddModel(dir string, n int, seed uint64) (*Model, error) {
	if n <= 0 || n%VectorAddBlock != 0 {
		return nil, fmt.Errorf("runtimetest: n = %d, want a positive multiple of %d", n, VectorAddBlock)
	}
	w := Floats(n, seed)
	bytes := int64(4 * n)
	slot := artifact.Align(bytes)
	x, t, y := int64(0), slot, 2*slot
	weights := Float32Bytes(w)
	grid, block := [3]int{n / VectorAddBlock, 1, 1}, [3]int{VectorAddBlock, 1, 1}
	plan := &artifact.Plan{
		Format:    artifact.FormatVersion,
		Model:     "vadd.onnx",
		Target:    "sm_80",
		Precision: "fp32",
		Batch:     1,
		PTX:       "model.ptx",
		Inputs:    []artifact.TensorRef{{Name: "x", DType: "f32", Shape: []int{n}, Offset: x, Bytes: bytes}},
		Outputs:   []artifact.TensorRef{{Name: "y", DType: "f32", Shape: []int{n}, Offset: y, Bytes: bytes}},
		Arena:     3 * slot,
		Weights:   artifact.WeightsFile{File: "model.weights", Bytes: int64(len(weights)), SHA256: artifact.SHA256(weights)},
		Launches: []artifact.Launch{
			{Kernel: VectorAddKernel, Grid: grid, Block: block, Args: []artifact.Arg{
				{Buffer: artifact.BufArena, Offset: x}, {Buffer: artifact.BufWeights, Offset: 0}, {Buffer: artifact.BufArena, Offset: t},
			}, FLOPs: int64(n), Bytes: 3 * bytes, Layers: []string{"add_w"}, Ops: []string{"add"}},
			{Kernel: VectorAddKernel, Grid: grid, Block: block, Args: []artifact.Arg{
				{Buffer: artifact.BufArena, Offset: t}, {Buffer: artifact.BufArena, Offset: x}, {Buffer: artifact.BufArena, Offset: y},
			}, FLOPs: int64(n), Bytes: 3 * bytes, Layers: []string{"add_x"}, Ops: []string{"add"}},
		},
	}
	if err := plan.Validate(); err != nil {
		return nil, fmt.Errorf("runtimetest: %v", err)
	}
	text, err := plan.Encode()
	if err != nil {
		return nil, err
	}
	ptxPath := filepath.Join(dir, plan.PTX)
	planPath, weightsPath := artifact.Paths(ptxPath)
	for path, data := range map[string][]byte{ptxPath: []byte(VectorAddPTX), planPath: text, weightsPath: weights} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, err
		}
	}
	return &Model{PTXPath: ptxPath, Plan: plan, Weights: w}, nil
}

// Want is y for input x, computed on the CPU in the kernels' order (float32
// additions are exact to reproduce).
func (m *Model) Want(x []float32) []float32 {
	y := make([]float32, len(x))
	for i := range x {
		t := x[i] + m.Weights[i]
		y[i] = t + x[i]
	}
	return y
}

// Floats returns n values in [-1, 1), none zero, determined by seed.
func Floats(n int, seed uint64) []float32 {
	out := make([]float32, n)
	s := seed*0x9e3779b97f4a7c15 + 1
	if s == 0 {
		s = 1 // xorshift stays at 0
	}
	for i := range out {
		for out[i] == 0 {
			s ^= s << 13 // xorshift64
			s ^= s >> 7
			s ^= s << 17
			out[i] = float32(s>>40)/float32(1<<23) - 1
		}
	}
	return out
}

// Float32Bytes encodes floats little-endian, as weights files hold them.
func Float32Bytes(f []float32) []byte {
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}
