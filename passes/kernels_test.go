package passes

import (
	"testing"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// kernelIR is a 1x1 conv with K 16 (the first expansion of MobileNetV2)
// whose output feeds a residual add and a ReLU, next to a 3x3 conv with a
// ReLU only.
const kernelIR = `graph k(%x: f32[8,16,28,28], %r: f32[8,96,28,28]) -> (%4, %6) {
  %w = const f32[96,16,1,1] @w
  %1 = conv2d %x, %w {dilations=[1,1], group=1, pads=[0,0,0,0], strides=[1,1]} : f32[8,96,28,28]
  %2 = add %1, %r : f32[8,96,28,28]
  %4 = relu %2 : f32[8,96,28,28]
  %v = const f32[32,16,3,3] @v
  %5 = conv2d %x, %v {dilations=[1,1], group=1, pads=[1,1,1,1], strides=[1,1]} : f32[8,32,28,28]
  %6 = relu %5 : f32[8,32,28,28]
}
`

// TestKernelFeatures: the cost model learns of a residual operand in the
// epilogue (a load per output) and of none where the epilogue only
// applies a ReLU; the tile chosen for K 16 is one the pass allows.
func TestKernelFeatures(t *testing.T) {
	g, err := ir.Parse(kernelIR)
	if err != nil {
		t.Fatal(err)
	}
	fillConsts(g)
	c := optimize(t, g)
	var withAdd, reluOnly *Kernel
	for _, k := range Kernels(g) {
		if k.Anchor.Op != ir.OpConv2D {
			continue
		}
		switch len(k.Epilogue) {
		case 2:
			withAdd = k
		case 1:
			reluOnly = k
		}
	}
	if withAdd == nil || reluOnly == nil {
		t.Fatalf("want conv+add+relu and conv+relu kernels, got %v", kernelOps(g))
	}
	if got, want := withAdd.Launches()[0].EpilogueLoads, int64(8*96*28*28); got != want {
		t.Errorf("conv+add+relu: %d epilogue loads, want %d", got, want)
	}
	if got := reluOnly.Launches()[0].EpilogueLoads; got != 0 {
		t.Errorf("conv+relu: %d epilogue loads, want 0", got)
	}
	if tile := costmodel.TileFromInts(withAdd.Anchor.Sched.Tile); !scheduleValid(tile, 16, max(withAdd.Anchor.Sched.SplitK, 1)) {
		t.Errorf("K 16 got tile %v (decisions %v)", tile, c.Decisions)
	}
}

func TestScheduleValid(t *testing.T) {
	deep, flat := costmodel.Tile{BM: 32, BN: 32, BK: 32, TM: 2, TN: 2}, costmodel.DefaultTile
	for _, c := range []struct {
		t        costmodel.Tile
		k, split int
		want     bool
	}{
		{deep, 16, 1, false}, // half of every step is padding
		{deep, 64, 1, true},
		{deep, 64, 4, false}, // 16 per split
		{flat, 16, 1, true},
		{flat, 16, 2, true},
		{flat, 16, 4, false}, // splits of 8: the last would be empty
	} {
		if got := scheduleValid(c.t, c.k, c.split); got != c.want {
			t.Errorf("scheduleValid(%v, K %d, split %d) = %v, want %v", c.t, c.k, c.split, got, c.want)
		}
	}
}

// TestPaddedStemPlan: a stem on a tensor-core tile is three launches
// (padding, GEMM, split-K reduction) in the order codegen emits them, its
// GEMM's K is the padded one, and plan-memory gives it a workspace for the
// partial sums and the padded input that overlaps no value live while it
// runs.
func TestPaddedStemPlan(t *testing.T) {
	g, err := ir.Parse(`graph stem(%x: f32[2,3,23,21]) -> (%3) {
  %w = const f32[16,3,7,7] @w
  %1 = conv2d %x, %w {pads=[3,3,3,3], strides=[2,2]} : f32[2,16,12,11] [k1 layout=nhwc]
  %2 = relu %1 : f32[2,16,12,11] [k1 layout=nhwc]
  %w2 = const f32[8,16,1,1] @w2
  %3 = conv2d %2, %w2 : f32[2,8,12,11] [k2]
}`)
	if err != nil {
		t.Fatal(err)
	}
	conv := g.Nodes[1]
	conv.Sched.Tile, conv.Sched.SplitK = costmodel.TensorCoreTiles[4].Ints(), 2
	ks := Kernels(g)
	ls := ks[0].Launches()
	pi, ok := costmodel.PaddedInputOf(conv)
	if !ok || len(ls) != 3 || ls[0].Gemm || !ls[1].Gemm || ls[2].Gemm || ls[0].DRAMBytes(true) != 2*(2*3*23*21+pi.Elems()) ||
		ls[1].WorkspaceBytes == 0 || ls[2].WorkspaceBytes != ls[1].WorkspaceBytes {
		t.Fatalf("stem launches %+v, want padding (fp16 bytes), GEMM and reduction (float partial sums written, then read)", ls)
	}
	if want := costmodel.KSlice(pi.K(), 2, 32) / 32; ls[1].KSlices != want {
		t.Errorf("GEMM takes %d K slices, want %d (K %d)", ls[1].KSlices, want, pi.K())
	}
	c := &Context{Precision: "fp16"}
	if err := PlanMemory(g, c); err != nil {
		t.Fatal(err)
	}
	size, paddedAt := costmodel.WorkspaceBytes(conv)
	off, ok := c.Memory.Workspace[conv]
	if !ok || paddedAt == 0 || paddedAt >= size || off+size > c.Memory.Bytes {
		t.Fatalf("workspace at %d (%v), %d bytes with the padded input at %d, arena %d", off, ok, size, paddedAt, c.Memory.Bytes)
	}
	for _, v := range []*ir.Value{g.Inputs[0], conv.Out, g.Nodes[2].Out} {
		o, has := c.Memory.Offsets[v]
		if has && o < off+size && off < o+v.Type.Bytes() {
			t.Errorf("%s at %d overlaps the workspace [%d, %d)", v, o, off, off+size)
		}
	}
}
