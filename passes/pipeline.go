// Package passes is cnnc's optimization pipeline: one ordered table of
// passes over the IR, each in its own file, with stable kebab-case names
// that --dump-after and --disable use. -O0 runs only the required passes
// (one kernel per layer), the "before" of every before/after report.
package passes

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"cnnc/ir"
	"cnnc/passes/costmodel"
)

// Pass is one row of the pipeline table.
type Pass struct {
	Name     string
	Why      string // one line: what the pass buys
	Required bool   // runs at -O0 too
	Run      func(g *ir.Graph, c *Context) error
}

// Pipeline is the pass order. Constraints between rows are data
// (mustPrecede) and checked by a test.
var Pipeline = []Pass{
	{"canonicalize", "one form per idiom (reshape chains, MatMul+Add as Gemm, x*sigmoid(x) as swish) so later patterns match", false, Canonicalize},
	{"fold-constants", "compute at compile time what depends only on weights", false, FoldConstants},
	{"fold-batchnorm", "inference batch-norm becomes conv weights and bias: one op and one pass over memory less", false, FoldBatchNorm},
	{"dead-code", "drop what no output needs", false, DeadCode},
	{"choose-layout", "activations stored channels last (NHWC) where their kernels run faster so", false, ChooseLayout},
	{"fuse-epilogue", "bias, activation and residual add applied in the producing conv/GEMM's registers", false, FuseEpilogue},
	{"fuse-shortcut-conv", "a 1x1 conv added to another's output (a projection shortcut) summed in the other's GEMM: its output never reaches memory", false, FuseShortcutConv},
	{"fuse-depthwise-pointwise", "a depthwise conv computed inside the next 1x1 conv: its output never reaches memory", false, FuseDepthwisePointwise},
	{"fuse-pooling", "global average pool computed inside the classifier GEMM", false, FusePooling},
	{"fuse-elementwise", "chains of element-wise ops as one pass over memory", false, FuseElementwise},
	{"tile", "per-kernel tile and split-K chosen by predicted time", false, Tile},
	{"persist", "GEMMs of several waves on Hopper's wgmma core run one block per slot, the next tile's loads overlapping the last one's epilogue", false, Persist},
	{"plan-memory", "one arena with buffers reused once their values are dead", false, PlanMemory},
}

// mustPrecede lists ordering constraints: the first pass must run before
// the second.
var mustPrecede = [][2]string{
	{"canonicalize", "fold-batchnorm"},
	{"fold-constants", "fold-batchnorm"},
	{"fold-batchnorm", "fuse-epilogue"},
	{"dead-code", "fuse-epilogue"},
	{"fold-batchnorm", "choose-layout"},
	{"choose-layout", "fuse-epilogue"},
	{"fuse-epilogue", "fuse-depthwise-pointwise"},
	{"fuse-epilogue", "fuse-shortcut-conv"},
	{"fuse-shortcut-conv", "tile"},
	{"fuse-epilogue", "fuse-pooling"},
	{"fuse-depthwise-pointwise", "tile"},
	{"fuse-pooling", "tile"},
	{"fuse-elementwise", "tile"},
	{"tile", "plan-memory"},
	{"tile", "persist"},
}

// Options choose what runs.
type Options struct {
	OptLevel  int      // 0: required passes only; 2: all (the default)
	Disable   []string // passes to skip
	DumpAfter []string // pass names or "all": print the IR after them
	Dump      io.Writer
	Verify    bool // run the verifier after every pass
	Profile   costmodel.Profile
	Model     string // for messages
	// Precision of the compiled kernels: tensor-core tiles are candidates
	// only in fp16.
	Precision string
	// Layout is choose-layout's policy: "" lets the cost model choose,
	// LayoutNCHW keeps every value NCHW, ir.LayoutNHWC stores every value
	// that can be channels last so (to measure and test those kernels).
	Layout string
	// Tuned are measured schedules (a tuning file's, see bench.Tune) by
	// KernelKey: the tile pass takes them over its cost model's choice.
	Tuned map[string]ir.Schedule
	// ForceTile, when set, puts every GEMM kernel that can take it on this
	// tile (the K split still the cost model's): a tuning run's candidate.
	ForceTile *costmodel.Tile
}

// Decision records one fusion or tiling choice and its predicted effect.
type Decision struct {
	Pass     string  `json:"pass"`
	Kernel   string  `json:"kernel"`
	What     string  `json:"what"`
	BeforeNs float64 `json:"before_ns"`
	AfterNs  float64 `json:"after_ns"`
	Taken    bool    `json:"taken"`
}

func (d Decision) String() string {
	verb := "took"
	if !d.Taken {
		verb = "declined"
	}
	return fmt.Sprintf("%-26s %s %s at %s: predicted %.1f us -> %.1f us (%+.1f us)", d.Pass, verb, d.What, d.Kernel,
		d.BeforeNs/1e3, d.AfterNs/1e3, (d.AfterNs-d.BeforeNs)/1e3)
}

// Context is the state passes share: the device profile, the decisions
// taken and the memory plan.
type Context struct {
	Profile   costmodel.Profile
	Precision string
	Layout    string // Options.Layout
	Tuned     map[string]ir.Schedule
	ForceTile *costmodel.Tile
	Decisions []Decision
	Memory    *MemoryPlan
	next      int
}

// newKernelID returns an unused kernel id.
func (c *Context) newKernelID(g *ir.Graph) int {
	if c.next == 0 {
		for _, n := range g.Nodes {
			c.next = max(c.next, n.Sched.Kernel)
		}
	}
	c.next++
	return c.next
}

func (c *Context) decide(d Decision) { c.Decisions = append(c.Decisions, d) }

// LookupPass finds a pipeline row.
func LookupPass(name string) (Pass, bool) {
	for _, p := range Pipeline {
		if p.Name == name {
			return p, true
		}
	}
	return Pass{}, false
}

// Run runs the pipeline on g in place.
func Run(g *ir.Graph, opt Options) (_ *Context, err error) {
	for _, n := range append(append([]string{}, opt.Disable...), opt.DumpAfter...) {
		if _, ok := LookupPass(n); !ok && n != "all" {
			return nil, fmt.Errorf("unknown pass %q, want one of %s", n, strings.Join(PassNames(), ", "))
		}
	}
	switch opt.Layout {
	case "", LayoutNCHW, ir.LayoutNHWC:
	default:
		return nil, fmt.Errorf("layout %q, want %s or %s (or none: the cost model chooses)", opt.Layout, LayoutNCHW, ir.LayoutNHWC)
	}
	c := &Context{Profile: opt.Profile, Precision: opt.Precision, Layout: opt.Layout, Tuned: opt.Tuned, ForceTile: opt.ForceTile}
	c.Profile.HalfStorage = opt.Precision == "fp16"
	for _, p := range Pipeline {
		if (!p.Required && opt.OptLevel == 0) || slices.Contains(opt.Disable, p.Name) {
			continue
		}
		if err := runPass(p, g, c, opt.Model); err != nil {
			return nil, err
		}
		if opt.Verify {
			if err := ir.Verify(g); err != nil {
				return nil, fmt.Errorf("after %s: %v", p.Name, err)
			}
		}
		if opt.Dump != nil && (slices.Contains(opt.DumpAfter, "all") || slices.Contains(opt.DumpAfter, p.Name)) {
			fmt.Fprintf(opt.Dump, "// after %s\n%s\n", p.Name, g)
		}
	}
	return c, nil
}

// runPass turns a panic inside a pass into an error naming the pass.
func runPass(p Pass, g *ir.Graph, c *Context, model string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic during %s while compiling %s: %v", p.Name, model, r)
		}
	}()
	if err := p.Run(g, c); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	return nil
}

// PassNames lists the pipeline's pass names in order.
func PassNames() []string {
	names := make([]string, len(Pipeline))
	for i, p := range Pipeline {
		names[i] = p.Name
	}
	return names
}
