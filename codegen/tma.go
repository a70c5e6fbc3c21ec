package codegen

import (
	"fmt"
	"slices"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"cnnc/artifact"
)

// The bulk tensor copy engine (TMA, sm_90): one thread asks for a whole
// box of a tensor (a K slice of an operand, every row of the block tile)
// and the engine writes it to shared memory, in the 128-byte swizzle the
// wgmma descriptors read, completing on an mbarrier that counts its
// bytes. The warps that multiply no longer compute an address, check a
// bound or issue a copy per 16 bytes: on ResNet-50's 3x3 convolutions
// that was most of the 130 instructions a warp issued per K slice.
//
// The engine reads a tensor through a tensor map (CUtensorMap) that only
// the driver can encode, from the tensor's device address: a kernel takes
// each map it uses as an extra 128-byte parameter passed by value (see
// mapsByValue), and the plan's argument carries the map's description
// (artifact.TensorMap) for the runtime to encode once the buffers exist.

// tensorMapParam is a tensor map a kernel takes: the parameter it reads
// it through and the map, over the buffer of the kernel's parameter of.
type tensorMapParam struct {
	param *llir.Param
	of    int // index of the tensor's parameter in kernel.params
	spec  artifact.TensorMap
}

// tensorMap is the address of the tensor map spec over the tensor that
// parameter t points to: a pointer parameter added to the kernel the
// first time (maps follow the tensor parameters, in the order asked).
func (k *kernel) tensorMap(t value.Value, spec artifact.TensorMap) value.Value {
	of := slices.IndexFunc(k.params, func(p *llir.Param) bool { return p == t })
	if of < 0 {
		panic(fmt.Sprintf("codegen: tensor map over %v, not a parameter of %s", t, k.name))
	}
	for _, m := range k.maps {
		if m.of == of && mapKey(m.spec) == mapKey(spec) {
			return k.b.NewPtrToInt(m.param, types.I64)
		}
	}
	p := llir.NewParam(fmt.Sprintf("map%d", len(k.maps)), types.NewPointer(types.I8))
	p.Attrs = append(p.Attrs, enum.ParamAttrNoAlias, enum.ParamAttrReadOnly)
	k.fn.Params = append(k.fn.Params, p)
	k.fn.Sig.Params = append(k.fn.Sig.Params, p.Typ)
	k.maps = append(k.maps, tensorMapParam{param: p, of: of, spec: spec})
	return k.b.NewPtrToInt(p, types.I64)
}

func mapKey(m artifact.TensorMap) string {
	s := fmt.Sprint(m.Dims, m.Strides, m.Box, m.ElementStrides, m.Swizzle)
	if c := m.Im2col; c != nil {
		s += fmt.Sprint(*c)
	}
	return s
}

// tmaSource stages one operand's K slices with the bulk tensor copy
// engine: for rows rows of the operand from row0, the slice at k0 (a
// multiple of 64), one 128-byte row of 64 halves per operand row, into
// shared address dst (1024-byte aligned), completing on the mbarrier at
// bar. It returns nothing; the bytes are rows * 128.
type tmaSource func(k *kernel, rows int, row0, k0, dst, bar value.Value)

// tmaRowBytes is the bytes of one operand row of a slice staged by TMA:
// 64 halves, the 128-byte swizzle's span.
const tmaRowBytes = 128

// tmaTiled is the tmaSource of a row-major [rows][K] half matrix at t
// (K contiguous, rows of ld elements): a 2-D tiled map, box 64 x rows.
func tmaTiled(t value.Value, rowsTotal, K, ld int) tmaSource {
	return func(k *kernel, rows int, row0, k0, dst, bar value.Value) {
		m := k.tensorMap(t, artifact.TensorMap{Dims: []int64{int64(K), int64(rowsTotal)}, Strides: []int64{int64(2 * ld)},
			Box: []int{tmaRowBytes / 2, rows}, ElementStrides: []int{1, 1}, Swizzle: tmaRowBytes})
		k.asmCall(types.Void, "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [$0], [$1, {$2, $3}], [$4];",
			"l,l,r,r,l,~{memory}", dst, m, k0, row0, bar)
	}
}

// tmaIm2col is the tmaSource of a convolution's im2col matrix
// A[pix][(r, q, c)] over its NHWC input at x, for C a multiple of 64 (a
// slice lies in one tap) and dilation 1: an im2col map walks the output
// pixels' top-left taps, strided, through each image and on to the next,
// and the copy's offsets pick the tap.
func tmaIm2col(x value.Value, g convGeometry) tmaSource {
	hw := g.Ho * g.Wo
	return func(k *kernel, rows int, pix0, k0, dst, bar value.Value) {
		lower, upper := tmaCorners(g)
		m := k.tensorMap(x, artifact.TensorMap{
			Dims:           []int64{int64(g.C), int64(g.W), int64(g.H), int64(g.N)},
			Strides:        []int64{int64(2 * g.C), int64(2 * g.C * g.W), int64(2 * g.C * g.W * g.H)},
			ElementStrides: []int{1, g.SW, g.SH, 1},
			Swizzle:        tmaRowBytes,
			Im2col:         &artifact.Im2col{Lower: lower, Upper: upper, Channels: tmaRowBytes / 2, Pixels: rows},
		})
		tap, c0 := k.div(k0, g.C), k.rem(k0, g.C)
		r, q := k.div(tap, g.KW), k.rem(tap, g.KW)
		nb, rest := k.div(pix0, hw), k.rem(pix0, hw)
		iw := k.sub(k.mul(k.rem(rest, g.Wo), ci(g.SW)), ci(g.PL))
		ih := k.sub(k.mul(k.div(rest, g.Wo), ci(g.SH)), ci(g.PT))
		k.asmCall(types.Void,
			"cp.async.bulk.tensor.4d.shared::cluster.global.im2col.mbarrier::complete_tx::bytes [$0], [$1, {$2, $3, $4, $5}], [$6], {$7, $8};",
			"l,l,r,r,r,r,l,h,h,~{memory}", dst, m, c0, iw, ih, nb, bar,
			k.b.NewTrunc(q, types.I16), k.b.NewTrunc(r, types.I16))
	}
}

// tmaCorners are the im2col box of g's top-left taps, (W, H): from -pad
// to the last output pixel's, relative to the input's far edge.
func tmaCorners(g convGeometry) (lower, upper []int) {
	return []int{-g.PL, -g.PT}, []int{(g.Wo-1)*g.SW - g.PL - (g.W - 1), (g.Ho-1)*g.SH - g.PT - (g.H - 1)}
}

// tmaConcatK is the tmaSource of two operands side by side along K, the
// first's split halves: a slice lies in one (split a multiple of 64).
func tmaConcatK(first, second tmaSource, split int) tmaSource {
	return func(k *kernel, rows int, row0, k0, dst, bar value.Value) {
		k.ifThen(k.lt(k0, ci(split)), func() { first(k, rows, row0, k0, dst, bar) })
		k.ifThen(k.ge(k0, ci(split)), func() { second(k, rows, row0, k.sub(k0, ci(split)), dst, bar) })
	}
}

// asmCall emits side-effecting inline PTX with operands and returns its
// result (nil for void).
func (k *kernel) asmCall(ret types.Type, text, constraints string, args ...value.Value) value.Value {
	params := make([]types.Type, len(args))
	for i, a := range args {
		params[i] = a.Type()
	}
	a := llir.NewInlineAsm(types.NewPointer(types.NewFunc(ret, params...)), text, constraints)
	a.SideEffect = true
	c := k.b.NewCall(a, args...)
	if ret == types.Void {
		return nil
	}
	return c
}

// mbarriers is the block's ring of mbarriers, one per pipeline stage, at
// half index at of buf (8-byte aligned).
type mbarriers struct {
	buf *llir.Global
	at  int
}

// addr is the shared address of stage s's mbarrier.
func (m mbarriers) addr(k *kernel, s value.Value) value.Value {
	return k.sharedAddr(m.buf, k.add(ci(m.at), k.mul(s, ci(4))))
}

// init makes each of the stages' mbarriers wait for one arrival (thread
// 0, which asks for the stage's copies) and their bytes, and makes the
// initialization visible to the copy engine; the other threads may wait
// on them after the next barrier.
func (m *mbarriers) init(k *kernel, stages int) {
	k.ifThen(k.icmp(enum.IPredEQ, k.tid(), ci(0)), func() {
		for s := range stages {
			k.asmCall(types.Void, "mbarrier.init.shared::cta.b64 [$0], 1;", "l,~{memory}", m.addr(k, ci(s)))
		}
		k.asm("fence.mbarrier_init.release.cluster;")
	})
}

// expect arms stage s's mbarrier for bytes: the calling thread arrives,
// and the phase completes once the copies have written them.
func (m mbarriers) expect(k *kernel, s value.Value, bytes int) {
	k.asmCall(types.Void, "{ .reg .b64 st; mbarrier.arrive.expect_tx.shared::cta.b64 st, [$0], $1; }",
		"l,r,~{memory}", m.addr(k, s), ci(bytes))
}

// wait spins until the phase of stage s's mbarrier with the given parity
// (0 or 1) has completed.
func (m mbarriers) wait(k *kernel, s, parity value.Value) {
	addr := m.addr(k, s)
	head, done := k.newBlock("mbwait"), k.newBlock("mbdone")
	k.b.NewBr(head)
	k.b = head
	ok := k.asmCall(i32, "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [$1], $2; selp.u32 $0, 1, 0, p; }",
		"=r,l,r,~{memory}", addr, parity)
	head.NewCondBr(head.NewICmp(enum.IPredNE, ok, ci(0)), done, head)
	k.b = done
}
