package passes

import (
	"slices"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// Kernel is one launch (two with split-K) as the fusion passes grouped the
// graph: members in node order, the anchor that sets the kernel's shape,
// the prologue computed on the fly into the anchor's operand, and the
// epilogue applied to its result.
type Kernel struct {
	ID       int
	Nodes    []*ir.Node
	Anchor   *ir.Node
	Prologue []*ir.Node
	Epilogue []*ir.Node
	// Partner is a second convolution summed into the anchor's
	// accumulators (fuse-shortcut-conv): its K follows the anchor's, and
	// the epilogue's first node adds the two.
	Partner *ir.Node
	Inputs  []*ir.Value // values read from outside the kernel, first use first
}

// Root is the node whose value the kernel writes.
func (k *Kernel) Root() *ir.Node { return k.Nodes[len(k.Nodes)-1] }

// Kernels lists the graph's kernels in launch order (a kernel runs where
// its root stands). Consts and views (reshape) outside a kernel launch
// nothing.
func Kernels(g *ir.Graph) []*Kernel {
	groups := map[int]*Kernel{}
	var order []*Kernel
	for _, n := range g.Nodes {
		if n.Op == ir.OpConst || (n.Op.View && n.Sched.Kernel == 0) {
			continue
		}
		id := n.Sched.Kernel
		k := groups[id]
		if id == 0 || k == nil {
			k = &Kernel{ID: id}
			if id != 0 {
				groups[id] = k
			}
			order = append(order, k)
		}
		k.Nodes = append(k.Nodes, n)
	}
	// Launch order is the order of the roots.
	pos := map[*ir.Node]int{}
	for i, n := range g.Nodes {
		pos[n] = i
	}
	slices.SortStableFunc(order, func(a, b *Kernel) int { return pos[a.Root()] - pos[b.Root()] })
	for _, k := range order {
		k.split()
	}
	return order
}

// split finds the anchor (the last GEMM-core node, else the first
// member), an earlier GEMM-core node as its partner, and the external
// inputs.
func (k *Kernel) split() {
	a, partner := -1, -1
	for i, n := range k.Nodes {
		if costmodel.IsGemmAnchor(n) {
			partner, a = a, i
		}
	}
	a = max(a, 0)
	k.Anchor = k.Nodes[a]
	k.Prologue = nil
	for i, n := range k.Nodes[:a] {
		if i == partner {
			k.Partner = n
			continue
		}
		k.Prologue = append(k.Prologue, n)
	}
	k.Epilogue = k.Nodes[a+1:]
	inside := map[*ir.Value]bool{}
	for _, n := range k.Nodes {
		inside[n.Out] = true
	}
	seen := map[*ir.Value]bool{}
	for _, n := range k.Nodes {
		for _, in := range n.Inputs {
			if !inside[in] && !seen[in] {
				seen[in] = true
				k.Inputs = append(k.Inputs, in)
			}
		}
	}
}

// ModelFLOPs is the kernel's share of model FLOPs.
func (k *Kernel) ModelFLOPs() int64 {
	var f int64
	for _, n := range k.Nodes {
		f += n.FLOPs()
	}
	return f
}

// MinBytes is each external input and the root's output moved once: of
// an input, the most that any of the kernel's nodes reads of it
// (ir.Node.ReadBytes: a strided 1x1 reads a quarter of its input).
func (k *Kernel) MinBytes() int64 {
	b := k.Root().Out.Type.Bytes()
	for _, in := range k.Inputs {
		var r int64
		for _, n := range k.Nodes {
			if slices.Contains(n.Inputs, in) {
				r = max(r, n.ReadBytes(in))
			}
		}
		if r == 0 {
			r = in.Type.Bytes()
		}
		b += r
	}
	return b
}

// transcendental ops cost a special-function evaluation per element.
func transcendental(op *ir.OpInfo) bool {
	switch op {
	case ir.OpSigmoid, ir.OpTanh, ir.OpErf, ir.OpExp, ir.OpSoftplus, ir.OpMish, ir.OpElu, ir.OpSwish,
		ir.OpSelu, ir.OpGelu, ir.OpPow, ir.OpLRN, ir.OpSoftmax:
		return true
	}
	return false
}

// Launches describes the kernel's launches to the cost model: the main
// one, and for split-K the reduction that applies the epilogue.
func (k *Kernel) Launches() []costmodel.Kernel {
	a := k.Anchor
	ck := costmodel.Kernel{FLOPs: k.ModelFLOPs(), Bytes: k.MinBytes(), Threads: costmodel.MapThreads}
	for _, n := range k.Nodes {
		if transcendental(n.Op) {
			ck.Transcen += n.Out.Type.Elems()
		}
	}
	switch {
	case costmodel.IsGemmAnchor(a):
		m, nn, kk, batch := k.GemmShape()
		pi, padded := costmodel.PaddedInputOf(a)
		if padded {
			kk = pi.K()
		}
		t := costmodel.TileFromInts(a.Sched.Tile)
		split := max(a.Sched.SplitK, 1)
		ck.Gemm = true
		ck.Blocks = costmodel.GemmBlocks(m, nn, batch, t, split)
		ck.Threads, ck.Shared, ck.Regs = t.Threads(), t.Shared(), t.Regs()
		ck.TileEff = costmodel.GemmTileEff(m, nn, t)
		ck.Tile = t
		if a.Op == ir.OpConv2D {
			// The NCHW GEMM runs its threads along pixels: a channels-last
			// input or output strides. A dense convolution with a
			// channels-last output is turned around (codegen's
			// channelsLastProblem) and coalesces both ways.
			in, out := ir.LayoutOf(a.Inputs[0]) == ir.LayoutNHWC, ir.LayoutOf(k.Root().Out) == ir.LayoutNHWC
			turned := out && a.Int("group") == 1
			ck.ChannelsLastIn, ck.ChannelsLastOut = in && !turned, out && !turned
			// codegen's 128-bit staging (loadA8, loadB8) on the tensor
			// cores: weights with K in eights; a turned conv's channels-
			// last input with channels in eights.
			if t.TensorCore() {
				if turned {
					ck.VectorStageA = padded || in && a.Inputs[0].Type.Shape[1]%8 == 0 && len(k.Prologue) == 0 && k.partnerStages()
					ck.VectorStageB = kk%8 == 0 // KxK weights in (r, q, c) order: codegen's OHWI copy
				} else {
					ck.VectorStageA = kk%8 == 0
				}
				if ck.Pipelined = ck.VectorStageA && ck.VectorStageB; ck.Pipelined {
					ck.Shared = t.PipelinedShared()
				}
			}
		}
		ck.TensorCore = t.TensorCore()
		ck.FLOPs = a.FLOPs()
		if k.Partner != nil {
			ck.FLOPs += k.Partner.FLOPs()
		}
		// A prologue runs on the scalar units, once per tile row (dw) or
		// column (pool) that loads it; the epilogue once per output.
		for _, p := range k.Prologue {
			switch {
			case p.Op == ir.OpConv2D:
				// Each row of tiles recomputes the depthwise outputs it reads.
				ck.PrologueTaps += p.FLOPs() / 2 * int64((m+t.BM-1)/t.BM)
			case p.Op == ir.OpGlobalAvgPool:
				ck.Extra += p.Inputs[0].Type.Elems() * int64((nn+t.BN-1)/t.BN)
			}
		}
		ck.Extra += int64(len(k.Epilogue)) * a.Out.Type.Elems()
		// An epilogue operand from another tensor (a residual) is a load
		// per output with its own index math.
		inKernel := map[*ir.Value]bool{}
		for _, n := range k.Nodes {
			inKernel[n.Out] = true
		}
		for _, e := range k.Epilogue {
			for _, in := range e.Inputs {
				if !inKernel[in] && in.Type.Elems() == e.Out.Type.Elems() {
					ck.EpilogueLoads += e.Out.Type.Elems()
				}
			}
		}
		ck.KSlices = costmodel.KSlice(kk, split, t.BK) / t.BK
		ck.SliceTrips = 1
		for _, p := range k.Prologue {
			switch p.Op {
			case ir.OpConv2D: // the taps' loads, then the math
				ck.DepthwisePrologue = true
			case ir.OpGlobalAvgPool: // a loop over the pooled window per element
				ck.SliceTrips = 1 + float64(p.Inputs[0].Type.Elems()/p.Out.Type.Elems())/4
			}
		}
		var out []costmodel.Kernel
		if padded {
			// The padded copy of the input (codegen's emitPadInput): a
			// pass over both (counted at 4 bytes an element, as tensors
			// are here; a padded stem is always fp16, which halves it).
			out = append(out, costmodel.Kernel{Bytes: 4 * (a.Inputs[0].Type.Elems() + pi.Elems()),
				Threads: costmodel.MapThreads, Blocks: costmodel.MapBlocks(int64(pi.N) * int64(pi.Hp) * int64(pi.Wp))})
		}
		out = append(out, ck)
		partial := int64(m) * int64(nn) * int64(batch) * 4 * int64(split)
		if split > 1 && a.Sched.Reduce == ir.ReduceCluster {
			out[len(out)-1].ClusterBytes = partial
		}
		if split > 1 && a.Sched.Reduce != ir.ReduceCluster {
			out[len(out)-1].WorkspaceBytes += partial // the partial sums are written once
			out = append(out, costmodel.Kernel{Bytes: a.Out.Type.Bytes(), WorkspaceBytes: partial, Threads: costmodel.MapThreads,
				Blocks: costmodel.MapBlocks(a.Out.Type.Elems())})
		}
		return out
	case costmodel.IsDepthwise(a):
		ck.Depthwise = true
		out := k.Root().Out.Type.Elems()
		if y := a.Out.Type.Shape; ir.LayoutOf(a.Inputs[0]) != ir.LayoutNHWC && ir.LayoutOf(a.Out) != ir.LayoutNHWC && a.Ints("dilations")[1] == 1 {
			// A thread per run of a row's outputs (codegen's emitDepthwiseRows).
			run := costmodel.DepthwiseRun(y[3])
			out = out / int64(y[3]) * int64((y[3]+run-1)/run)
		}
		ck.Blocks = costmodel.MapBlocks(out)
	case (a.Op == ir.OpGlobalAvgPool || a.Op == ir.OpGlobalMaxPool) && ir.LayoutOf(a.Inputs[0]) == ir.LayoutNHWC:
		// A block per image and run of channels (codegen's
		// emitGlobalPoolNHWC), counted for float storage: the precision
		// is not known here, and half channels in eights take runs of 16
		// channels, not 8 (half the blocks).
		x := a.Inputs[0].Type.Shape
		ck.Blocks = costmodel.GlobalPoolOf(x[0], x[1], 1, 4).Blocks
	case isRowReduction(a):
		ck.Blocks = max(1, (rowCount(a)+costmodel.RowsPerBlock-1)/costmodel.RowsPerBlock)
	default:
		ck.Blocks = costmodel.MapBlocks(k.Root().Out.Type.Elems())
	}
	return []costmodel.Kernel{ck}
}

// GemmShape is the GEMM the kernel's anchor runs: the anchor's, with a
// partner's K added.
func (k *Kernel) GemmShape() (m, nn, kk, batch int) {
	m, nn, kk, batch = costmodel.GemmShape(k.Anchor)
	if k.Partner != nil {
		_, _, pk, _ := costmodel.GemmShape(k.Partner)
		kk += pk
	}
	return m, nn, kk, batch
}

// partnerStages says a partner, if any, stages 128 bits at a time as the
// anchor does (codegen's srcA8): a channels-last input with channels in
// eights, and one of the two K a whole number of the tile's slices (it
// goes first).
func (k *Kernel) partnerStages() bool {
	p := k.Partner
	if p == nil {
		return true
	}
	_, _, ak, _ := costmodel.GemmShape(k.Anchor)
	_, _, pk, _ := costmodel.GemmShape(p)
	bk := costmodel.TileFromInts(k.Anchor.Sched.Tile).BK
	return ir.LayoutOf(p.Inputs[0]) == ir.LayoutNHWC && p.Inputs[0].Type.Shape[1]%8 == 0 && pk%8 == 0 && (ak%bk == 0 || pk%bk == 0)
}

// Predict is the kernel's predicted time in nanoseconds, all launches.
func (k *Kernel) Predict(p costmodel.Profile) float64 {
	var ns float64
	for _, l := range k.Launches() {
		ns += p.Predict(l).Ns
	}
	return ns
}

// PredictLaunches is the predicted time of each launch.
func (k *Kernel) PredictLaunches(p costmodel.Profile) []float64 {
	var out []float64
	for _, l := range k.Launches() {
		out = append(out, p.Predict(l).Ns)
	}
	return out
}

func isRowReduction(n *ir.Node) bool {
	switch n.Op {
	case ir.OpGlobalAvgPool, ir.OpGlobalMaxPool, ir.OpSoftmax, ir.OpReduceMean, ir.OpLayerNorm:
		return true
	}
	return false
}

// rowCount is how many warp rows a reduction kernel runs.
func rowCount(n *ir.Node) int {
	x := n.Inputs[0].Type.Shape
	switch n.Op {
	case ir.OpGlobalAvgPool, ir.OpGlobalMaxPool:
		return x[0] * x[1]
	case ir.OpSoftmax:
		return int(n.Out.Type.Elems()) / max(x[n.Int("axis")], 1)
	case ir.OpLayerNorm:
		return int(ir.ShapeElems(x[:n.Int("axis")]))
	}
	return int(n.Out.Type.Elems())
}
