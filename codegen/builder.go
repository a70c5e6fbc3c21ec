package codegen

import (
	"fmt"
	"math"

	"github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/metadata"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// module is the per-model codegen context: one LLVM module, its intrinsic
// declarations and the kernel annotations.
type module struct {
	m          *ir.Module
	intrinsics map[string]*ir.Func
	annots     *metadata.NamedDef
	elem       types.Type // element type of tensors in global memory: float or half
	hopper     bool       // the target has wgmma (Target.Hopper)
}

var (
	f32Ptr = types.NewPointer(types.Float) // generic float*; kernel params are inferred global
	i32    = types.I32
	f32    = types.Float
)

func newModule() *module {
	m := ir.NewModule()
	m.TargetTriple = nvptxTriple
	m.DataLayout = nvptxDataLayout
	annots := &metadata.NamedDef{Name: "nvvm.annotations"}
	m.NamedMetadataDefs["nvvm.annotations"] = annots
	return &module{m: m, intrinsics: map[string]*ir.Func{}, annots: annots, elem: f32}
}

// setPrecision chooses how tensors are stored in global memory: "fp32" or
// "fp16" (half storage, float arithmetic: loads widen, stores narrow).
func (mod *module) setPrecision(p string) error {
	switch p {
	case "", "fp32":
		mod.elem = f32
	case "fp16":
		mod.elem = types.Half
	default:
		return fmt.Errorf("unknown precision %q, want fp32 or fp16", p)
	}
	return nil
}

// getIntrinsic returns the declaration of an LLVM or NVVM intrinsic,
// declaring it on first use.
func (mod *module) getIntrinsic(name string, ret types.Type, params ...types.Type) *ir.Func {
	if f, ok := mod.intrinsics[name]; ok {
		return f
	}
	ps := make([]*ir.Param, len(params))
	for i, p := range params {
		ps[i] = ir.NewParam("", p)
	}
	f := mod.m.NewFunc(name, ret, ps...)
	mod.intrinsics[name] = f
	return f
}

// annotate adds an nvvm.annotations entry {fn, key, value}.
func (mod *module) annotate(fn *ir.Func, key string, v int64) {
	t := &metadata.Tuple{MetadataID: metadata.MetadataID(len(mod.m.MetadataDefs)),
		Fields: []metadata.Field{fn, &metadata.String{Value: key}, constant.NewInt(i32, v)}}
	mod.m.MetadataDefs = append(mod.m.MetadataDefs, t)
	mod.annots.Nodes = append(mod.annots.Nodes, t)
}

// kernel builds one kernel function: the current block, a counter for
// block names, and helpers that read like CUDA.
type kernel struct {
	mod     *module
	fn      *ir.Func
	b       *ir.Block
	name    string
	threads int // threads per block, also the maxntid annotation
	cluster int // blocks per thread-block cluster along z, 0 for none
	blocks  int
	params  []*ir.Param
	maps    []tensorMapParam // tensor map parameters, after params
}

// makeKernel starts a kernel with nptr tensor pointer parameters
// (noalias), float* or half* by the module's precision.
func (mod *module) makeKernel(name string, nptr, threads int) *kernel {
	ps := make([]*ir.Param, nptr)
	for i := range ps {
		ps[i] = ir.NewParam(fmt.Sprintf("p%d", i), types.NewPointer(mod.elem))
		ps[i].Attrs = append(ps[i].Attrs, enum.ParamAttrNoAlias)
	}
	fn := mod.m.NewFunc(name, types.Void, ps...)
	mod.annotate(fn, "kernel", 1)
	mod.annotate(fn, "maxntidx", int64(threads))
	k := &kernel{mod: mod, fn: fn, name: name, threads: threads, params: ps}
	k.b = fn.NewBlock("entry")
	return k
}

// finish terminates the kernel's last block.
func (k *kernel) finish() { k.b.NewRet(nil) }

func (k *kernel) newBlock(what string) *ir.Block {
	k.blocks++
	return k.fn.NewBlock(fmt.Sprintf("%s%d", what, k.blocks))
}

// Constants.

func ci(v int) *constant.Int { return constant.NewInt(i32, int64(v)) }

func cf(v float64) *constant.Float {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return constant.NewFloat(f32, v)
	}
	return constant.NewFloat(f32, float64(float32(v)))
}

func constInt(v value.Value) (int64, bool) {
	c, ok := v.(*constant.Int)
	if !ok {
		return 0, false
	}
	return c.X.Int64(), true
}

// Special registers.

func (k *kernel) sreg(name string) value.Value {
	return k.b.NewCall(k.mod.getIntrinsic("llvm.nvvm.read.ptx.sreg."+name, i32))
}

func (k *kernel) tid() value.Value         { return k.sreg("tid.x") }
func (k *kernel) ctaid(d byte) value.Value { return k.sreg("ctaid." + string(d)) }

// globalThread is blockIdx.x * blockDim.x + threadIdx.x.
func (k *kernel) globalThread() value.Value {
	return k.add(k.mul(k.ctaid('x'), ci(k.threads)), k.tid())
}

// Integer index arithmetic (i32, non-negative), folded when constant.

func (k *kernel) add(a, b value.Value) value.Value {
	x, okx := constInt(a)
	y, oky := constInt(b)
	switch {
	case okx && oky:
		return ci(int(x + y))
	case okx && x == 0:
		return b
	case oky && y == 0:
		return a
	}
	return k.b.NewAdd(a, b)
}

func (k *kernel) sub(a, b value.Value) value.Value {
	x, okx := constInt(a)
	y, oky := constInt(b)
	switch {
	case okx && oky:
		return ci(int(x - y))
	case oky && y == 0:
		return a
	}
	return k.b.NewSub(a, b)
}

func (k *kernel) mul(a, b value.Value) value.Value {
	x, okx := constInt(a)
	y, oky := constInt(b)
	switch {
	case okx && oky:
		return ci(int(x * y))
	case (okx && x == 0) || (oky && y == 0):
		return ci(0)
	case okx && x == 1:
		return b
	case oky && y == 1:
		return a
	}
	return k.b.NewMul(a, b)
}

// min is the smaller of two signed indices.
func (k *kernel) min(a, b value.Value) value.Value {
	x, okx := constInt(a)
	y, oky := constInt(b)
	if okx && oky {
		return ci(int(min(x, y)))
	}
	return k.sel(k.lt(a, b), a, b)
}

// div and rem are unsigned: every index is non-negative.
func (k *kernel) div(a value.Value, d int) value.Value {
	if x, ok := constInt(a); ok {
		return ci(int(x) / d)
	}
	if d == 1 {
		return a
	}
	return k.b.NewUDiv(a, ci(d))
}

func (k *kernel) rem(a value.Value, d int) value.Value {
	if x, ok := constInt(a); ok {
		return ci(int(x) % d)
	}
	if d == 1 {
		return ci(0)
	}
	return k.b.NewURem(a, ci(d))
}

// xor is a ^ b.
func (k *kernel) xor(a, b value.Value) value.Value {
	x, okx := constInt(a)
	y, oky := constInt(b)
	if okx && oky {
		return ci(int(x ^ y))
	}
	return k.b.NewXor(a, b)
}

// madd is a*m + b with an int multiplier.
func (k *kernel) madd(a value.Value, m int, b value.Value) value.Value {
	return k.add(k.mul(a, ci(m)), b)
}

func (k *kernel) icmp(p enum.IPred, a, b value.Value) value.Value {
	x, okx := constInt(a)
	y, oky := constInt(b)
	if okx && oky {
		var r bool
		switch p {
		case enum.IPredSLT:
			r = x < y
		case enum.IPredSGE:
			r = x >= y
		case enum.IPredEQ:
			r = x == y
		case enum.IPredSLE:
			r = x <= y
		case enum.IPredSGT:
			r = x > y
		default:
			return k.b.NewICmp(p, a, b)
		}
		return constant.NewBool(r)
	}
	return k.b.NewICmp(p, a, b)
}

func (k *kernel) lt(a, b value.Value) value.Value { return k.icmp(enum.IPredSLT, a, b) }
func (k *kernel) ge(a, b value.Value) value.Value { return k.icmp(enum.IPredSGE, a, b) }

// and combines conditions, dropping constant-true ones.
func (k *kernel) and(conds ...value.Value) value.Value {
	var acc value.Value
	for _, c := range conds {
		if b, ok := c.(*constant.Int); ok {
			if b.X.Sign() != 0 {
				continue
			}
			return constant.False
		}
		if acc == nil {
			acc = c
		} else {
			acc = k.b.NewAnd(acc, c)
		}
	}
	if acc == nil {
		return constant.True
	}
	return acc
}

// inRange is 0 <= v < n (v may be negative as a signed value).
func (k *kernel) inRange(v value.Value, n int) value.Value {
	// One unsigned compare: a negative v is a large unsigned one.
	if c, ok := v.(*constant.Int); ok {
		return constant.NewBool(c.X.Sign() >= 0 && c.X.Int64() < int64(n))
	}
	return k.icmp(enum.IPredULT, v, ci(n))
}

func (k *kernel) sel(c, a, b value.Value) value.Value {
	if x, ok := c.(*constant.Int); ok {
		if x.X.Sign() != 0 {
			return a
		}
		return b
	}
	return k.b.NewSelect(c, a, b)
}

// Floating point (f32).

func (k *kernel) fadd(a, b value.Value) value.Value { return k.b.NewFAdd(a, b) }
func (k *kernel) fsub(a, b value.Value) value.Value { return k.b.NewFSub(a, b) }
func (k *kernel) fmul(a, b value.Value) value.Value { return k.b.NewFMul(a, b) }
func (k *kernel) fdiv(a, b value.Value) value.Value { return k.b.NewFDiv(a, b) }

func (k *kernel) fma(a, b, c value.Value) value.Value {
	return k.b.NewCall(k.mod.getIntrinsic("llvm.fma.f32", f32, f32, f32, f32), a, b, c)
}

func (k *kernel) call1(name string, x value.Value) value.Value {
	return k.b.NewCall(k.mod.getIntrinsic(name, f32, f32), x)
}

func (k *kernel) call2(name string, x, y value.Value) value.Value {
	return k.b.NewCall(k.mod.getIntrinsic(name, f32, f32, f32), x, y)
}

func (k *kernel) fmax(a, b value.Value) value.Value { return k.call2("llvm.maxnum.f32", a, b) }
func (k *kernel) fmin(a, b value.Value) value.Value { return k.call2("llvm.minnum.f32", a, b) }
func (k *kernel) fabs(a value.Value) value.Value    { return k.call1("llvm.fabs.f32", a) }
func (k *kernel) sqrt(a value.Value) value.Value    { return k.call1("llvm.sqrt.f32", a) }

// exp is 2^(x log2 e) on the special-function unit.
func (k *kernel) exp(x value.Value) value.Value {
	return k.call1("llvm.nvvm.ex2.approx.ftz.f", k.fmul(x, cf(math.Log2E)))
}

// log is log2(x) / log2(e) on the special-function unit.
func (k *kernel) log(x value.Value) value.Value {
	return k.fmul(k.call1("llvm.nvvm.lg2.approx.ftz.f", x), cf(math.Ln2))
}

func (k *kernel) fcmp(p enum.FPred, a, b value.Value) value.Value { return k.b.NewFCmp(p, a, b) }

func (k *kernel) sitofp(v value.Value) value.Value { return k.b.NewSIToFP(v, f32) }

// Memory.

// elemOf is the element type a pointer points to.
func elemOf(ptr value.Value) types.Type {
	if pt, ok := ptr.Type().(*types.PointerType); ok {
		return pt.ElemType
	}
	return f32
}

// at is &base[idx] for a tensor pointer (float or half).
func (k *kernel) at(base, idx value.Value) value.Value {
	return k.b.NewGetElementPtr(elemOf(base), base, idx)
}

// load reads a float; a half element is widened.
func (k *kernel) load(ptr value.Value) value.Value {
	t := elemOf(ptr)
	l := k.b.NewLoad(t, ptr)
	if t == types.Half {
		l.Align = 2
		return k.b.NewFPExt(l, f32)
	}
	l.Align = 4
	return l
}

// store writes a float; to a half element it is narrowed (round to
// nearest even).
func (k *kernel) store(v, ptr value.Value) {
	if elemOf(ptr) == types.Half {
		st := k.b.NewStore(k.b.NewFPTrunc(v, types.Half), ptr)
		st.Align = 2
		return
	}
	s := k.b.NewStore(v, ptr)
	s.Align = 4
}

// asFloatPtr views a tensor pointer as float* (split-K workspaces hold
// float partial sums whatever the precision).
func (k *kernel) asFloatPtr(p value.Value) value.Value {
	if elemOf(p) == f32 {
		return p
	}
	return k.b.NewBitCast(p, f32Ptr)
}

// loadAt is base[idx].
func (k *kernel) loadAt(base, idx value.Value) value.Value { return k.load(k.at(base, idx)) }

// loadGuarded is ok ? base[idx] : fill, branch-free: out-of-range lanes
// read element 0 and discard it.
func (k *kernel) loadGuarded(base, idx, ok value.Value, fill float64) value.Value {
	if c, isConst := ok.(*constant.Int); isConst {
		if c.X.Sign() != 0 {
			return k.loadAt(base, idx)
		}
		return cf(fill)
	}
	v := k.loadAt(base, k.sel(ok, idx, ci(0)))
	return k.sel(ok, v, cf(fill))
}

// sharedBuffer declares a float array in shared memory for this kernel.
func (k *kernel) sharedBuffer(what string, n int) *ir.Global {
	g := k.mod.m.NewGlobalDef(k.name+"_"+what, constant.NewUndef(types.NewArray(uint64(n), f32)))
	g.AddrSpace = 3
	g.Typ = types.NewPointer(g.ContentType)
	g.Typ.AddrSpace = 3
	g.Linkage = enum.LinkageInternal
	g.Align = 16
	return g
}

// sharedAt is &buf[idx] in shared memory.
func (k *kernel) sharedAt(buf *ir.Global, idx value.Value) value.Value {
	return k.b.NewGetElementPtr(buf.ContentType, buf, ci(0), idx)
}

func (k *kernel) barrier() { k.b.NewCall(k.mod.getIntrinsic("llvm.nvvm.barrier0", types.Void)) }

// shuffleXor exchanges v with the lane whose id differs in mask bits.
func (k *kernel) shuffleXor(v value.Value, mask int) value.Value {
	f := k.mod.getIntrinsic("llvm.nvvm.shfl.sync.bfly.f32", f32, i32, f32, i32, i32)
	return k.b.NewCall(f, ci(-1), v, ci(mask), ci(31))
}

// Control flow.

// loop emits `for i := start; i < end; i += step` with loop-carried values:
// body gets i and the current values and returns the next ones; loop
// returns the values after the last iteration. Everything stays in SSA
// registers (phis), so llc needs no mem2reg.
func (k *kernel) loop(start, end value.Value, step int, carried []value.Value, body func(i value.Value, c []value.Value) []value.Value) []value.Value {
	pre := k.b
	head, bodyB, exit := k.newBlock("loop"), k.newBlock("body"), k.newBlock("done")
	pre.NewBr(head)
	iv := head.NewPhi(ir.NewIncoming(start, pre))
	phis := make([]*ir.InstPhi, len(carried))
	cur := make([]value.Value, len(carried))
	for j, c := range carried {
		phis[j] = head.NewPhi(ir.NewIncoming(c, pre))
		cur[j] = phis[j]
	}
	head.NewCondBr(head.NewICmp(enum.IPredSLT, iv, end), bodyB, exit)
	k.b = bodyB
	next := body(iv, cur)
	inc := k.b.NewAdd(iv, ci(step))
	k.b.NewBr(head)
	iv.Incs = append(iv.Incs, ir.NewIncoming(inc, k.b))
	for j, p := range phis {
		p.Incs = append(p.Incs, ir.NewIncoming(next[j], k.b))
	}
	k.b = exit
	return cur
}

// ifThen runs then only where cond holds.
func (k *kernel) ifThen(cond value.Value, then func()) {
	if c, ok := cond.(*constant.Int); ok {
		if c.X.Sign() != 0 {
			then()
		}
		return
	}
	thenB, done := k.newBlock("then"), k.newBlock("endif")
	k.b.NewCondBr(cond, thenB, done)
	k.b = thenB
	then()
	k.b.NewBr(done)
	k.b = done
}

// exitUnless returns from the kernel where cond does not hold.
func (k *kernel) exitUnless(cond value.Value) {
	if c, ok := cond.(*constant.Int); ok && c.X.Sign() != 0 {
		return
	}
	cont, ret := k.newBlock("live"), k.newBlock("exit")
	k.b.NewCondBr(cond, cont, ret)
	ret.NewRet(nil)
	k.b = cont
}

// coords splits a row-major linear index into coordinates of shape.
func (k *kernel) coords(idx value.Value, shape []int) []value.Value {
	out := make([]value.Value, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if d == 0 {
			out[0] = idx
			break
		}
		out[d] = k.rem(idx, shape[d])
		idx = k.div(idx, shape[d])
	}
	return out
}

// linear is the offset of coordinates under strides.
func (k *kernel) linear(coords []value.Value, strides []int) value.Value {
	var off value.Value = ci(0)
	for d, c := range coords {
		off = k.add(off, k.mul(c, ci(strides[d])))
	}
	return off
}
