package passes

import (
	"slices"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// Alignment of every arena buffer.
const Alignment = 256

func align(n int64) int64 { return (n + Alignment - 1) / Alignment * Alignment }

// MemoryPlan places every value that lives in device memory in one arena.
type MemoryPlan struct {
	Offsets map[*ir.Value]int64
	// Workspace holds a GEMM-core kernel's scratch memory (split-K partial
	// sums, a padded input: costmodel.WorkspaceBytes), by its anchor.
	Workspace map[*ir.Node]int64
	Bytes     int64 // the arena's size
	Unshared  int64 // what the arena would take with no reuse
}

// buffer is one allocation: a value (with the views that alias it) or a
// kernel's workspace, live from kernel first to kernel last.
type buffer struct {
	size        int64
	first, last int
	values      []*ir.Value
	anchor      *ir.Node
	offset      int64
}

// PlanMemory assigns arena offsets: values that are dead by the time a
// kernel runs give their space to the kernel's output. Graph inputs live
// from the start and outputs to the end. Placement is greedy, largest
// buffer first, at the lowest offset free during its lifetime.
//
// Before: kernels and tiles chosen. After: c.Memory holds every kernel
// output, graph input and GEMM-core workspace.
func PlanMemory(g *ir.Graph, c *Context) error {
	kernels := Kernels(g)
	bufs := map[*ir.Value]*buffer{}
	var all []*buffer
	root := func(v *ir.Value) *ir.Value {
		for v.Def != nil && v.Def.Op.View && v.Def.Sched.Kernel == 0 {
			v = v.Def.Inputs[0]
		}
		return v
	}
	use := func(v *ir.Value, at int) {
		if v.Def != nil && v.Def.Op == ir.OpConst {
			return
		}
		b := bufs[root(v)]
		if b == nil {
			b = &buffer{size: align(v.Type.Bytes()), first: at, last: at}
			bufs[root(v)] = b
			all = append(all, b)
		}
		b.last = max(b.last, at)
		if !slices.Contains(b.values, v) {
			b.values = append(b.values, v)
		}
	}
	for _, v := range g.Inputs {
		use(v, -1)
	}
	for i, k := range kernels {
		for _, in := range k.Inputs {
			use(in, i)
		}
		use(k.Root().Out, i)
		if a := k.Anchor; costmodel.IsGemmAnchor(a) {
			if size, _ := costmodel.WorkspaceBytes(a); size > 0 {
				all = append(all, &buffer{size: align(size), first: i, last: i, anchor: a})
			}
		}
	}
	for _, v := range g.Outputs {
		use(v, len(kernels))
	}
	// Views of a buffer's value are in the same buffer.
	for _, n := range g.Nodes {
		if n.Op.View && n.Sched.Kernel == 0 {
			if b := bufs[root(n.Out)]; b != nil && !slices.Contains(b.values, n.Out) {
				b.values = append(b.values, n.Out)
			}
		}
	}
	plan := &MemoryPlan{Offsets: map[*ir.Value]int64{}, Workspace: map[*ir.Node]int64{}}
	order := slices.Clone(all)
	slices.SortStableFunc(order, func(a, b *buffer) int {
		switch {
		case a.size > b.size:
			return -1
		case a.size < b.size:
			return 1
		}
		return a.first - b.first
	})
	var placed []*buffer
	for _, b := range order {
		plan.Unshared += b.size
		var off int64
		for {
			moved := false
			for _, p := range placed {
				if p.first <= b.last && b.first <= p.last && p.offset < off+b.size && off < p.offset+p.size {
					off = p.offset + p.size
					moved = true
				}
			}
			if !moved {
				break
			}
		}
		b.offset = off
		placed = append(placed, b)
		plan.Bytes = max(plan.Bytes, off+b.size)
	}
	for _, b := range all {
		for _, v := range b.values {
			plan.Offsets[v] = b.offset
		}
		if b.anchor != nil {
			plan.Workspace[b.anchor] = b.offset
		}
	}
	c.Memory = plan
	return nil
}
