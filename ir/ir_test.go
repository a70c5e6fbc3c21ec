package ir

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const blockText = `graph block(%x: f32[1,64,56,56]) -> (%3) {
  %w = const f32[64,64,3,3] @w0
  %b = const f32[4] [0.5, -1, inf, 1e-07]
  %s = const i64[2] [1, -3]
  %1 = conv2d %x, %w {dilations=[1,1], group=1, pads=[1,1,1,1], strides=[1,1]} : f32[1,64,56,56]  # /layer1/conv1/Conv
  %2 = relu %1 : f32[1,64,56,56]
  %3 = add %2, %x : f32[1,64,56,56]
}
`

func TestRoundTrip(t *testing.T) {
	g, err := Parse(blockText)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(g); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if diff := cmp.Diff(blockText, g.String()); diff != "" {
		t.Errorf("print(parse(x)) != x (-want +got):\n%s", diff)
	}
	if got := g.Nodes[3].Origin; got != "/layer1/conv1/Conv" {
		t.Errorf("origin = %q, want /layer1/conv1/Conv", got)
	}
}

func TestFLOPsAndBytes(t *testing.T) {
	g, err := Parse(blockText)
	if err != nil {
		t.Fatal(err)
	}
	conv := g.Nodes[3]
	// 2 x (64 output channels x 56 x 56 pixels) x (64 x 3 x 3) multiply-accumulates.
	if got, want := conv.FLOPs(), int64(2*64*56*56*64*3*3); got != want {
		t.Errorf("conv FLOPs = %d, want %d", got, want)
	}
	act := int64(64 * 56 * 56 * 4)
	if got, want := conv.MinBytes(), 2*act+64*64*9*4; got != want {
		t.Errorf("conv bytes = %d, want %d", got, want)
	}
	if got := g.Nodes[4].FLOPs(); got != 0 {
		t.Errorf("relu FLOPs = %d, want 0", got)
	}
	if got, want := g.Nodes[5].MinBytes(), 3*act; got != want {
		t.Errorf("add bytes = %d, want %d", got, want)
	}
}

// TestReadBytes: a convolution whose stride is longer than its window
// reads only the rows (channels last, the pixels) that windows cover.
func TestReadBytes(t *testing.T) {
	g, err := Parse(`graph g(%x: f32[2,64,56,56], %y: f32[2,4,56,56]) -> (%2, %3, %4, %6, %7) {
  %w = const f32[128,64,1,1] @w
  %v = const f32[64,64,3,3] @v
  %u = const f32[8,4,1,1] @u
  %1 = relu %x : f32[2,64,56,56] [k1 layout=nhwc]
  %2 = conv2d %1, %w {dilations=[1,1], group=1, pads=[0,0,0,0], strides=[2,2]} : f32[2,128,28,28] [k2]
  %3 = conv2d %x, %w {dilations=[1,1], group=1, pads=[0,0,0,0], strides=[2,2]} : f32[2,128,28,28]
  %4 = conv2d %1, %v {dilations=[1,1], group=1, pads=[1,1,1,1], strides=[2,2]} : f32[2,64,28,28] [k3]
  %5 = relu %y : f32[2,4,56,56] [k4 layout=nhwc]
  %6 = conv2d %5, %u {dilations=[1,1], group=1, pads=[0,0,0,0], strides=[2,2]} : f32[2,8,28,28] [k5]
  %7 = conv2d %1, %w {dilations=[1,1], group=1, pads=[0,0,0,0], strides=[3,3]} : f32[2,128,19,19] [k6]
}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	byOut := map[string]*Node{}
	for _, n := range g.Nodes {
		byOut[n.Out.Name] = n
	}
	x := int64(2 * 64 * 56 * 56 * 4)
	for _, c := range []struct {
		node, in string
		want     int64
	}{
		{"2", "1", x / 4},                   // channels last: every other row and pixel
		{"3", "x", x / 2},                   // NCHW: every other row, whole rows
		{"4", "1", x},                       // 3x3 windows cover every row
		{"6", "5", int64(2*4*56*56*4) / 2},  // 16-byte pixels: sectors span two, rows only
		{"7", "1", int64(2*64*4) * 19 * 19}, // rows and columns 0, 3, ..., 54
		{"2", "w", 128 * 64 * 4},            // weights: all
	} {
		n := byOut[c.node]
		var in *Value
		for _, v := range n.Inputs {
			if v.Name == c.in {
				in = v
			}
		}
		if got := n.ReadBytes(in); got != c.want {
			t.Errorf("%%%s reads %d bytes of %%%s, want %d", c.node, got, c.in, c.want)
		}
	}
	if got, want := byOut["2"].MinBytes(), x/4+128*64*4+2*128*28*28*4; got != want {
		t.Errorf("strided 1x1 bytes = %d, want %d", got, want)
	}
}

func TestVerifyCatches(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"wrong type", `graph g(%x: f32[1,3,8,8]) -> (%1) {
  %1 = relu %x : f32[1,3,8,9]
}`, "got type f32[1,3,8,9], want f32[1,3,8,8]"},
		{"conv channels", `graph g(%x: f32[1,3,8,8]) -> (%1) {
  %w = const f32[4,2,3,3] @w
  %1 = conv2d %x, %w {dilations=[1,1], group=1, pads=[0,0,0,0], strides=[1,1]} : f32[1,4,6,6]
}`, "input has 3 channels"},
		{"broadcast", `graph g(%x: f32[2,3], %y: f32[4]) -> (%1) {
  %1 = add %x, %y : f32[2,3]
}`, "do not broadcast"},
		{"arity", `graph g(%x: f32[2,3]) -> (%1) {
  %1 = add %x : f32[2,3]
}`, "got 1 inputs, want 2"},
		{"missing attr", `graph g(%x: f32[2,3]) -> (%1) {
  %1 = transpose %x : f32[3,2]
}`, "missing attribute perm"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := Parse(c.text)
			if err != nil {
				t.Fatal(err)
			}
			err = Verify(g)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{"graph g(%x: f32[1]) -> (%y) {\n}", "never defined"},
		{"graph g(%x: f32[1]) -> (%x) {\n  %1 = frob %x : f32[1]\n}", `unknown op "frob"`},
		{"graph g(%x: f32[1]) -> (%x) {\n  %1 = relu %z : f32[1]\n}", "used before it is defined"},
		{"graph g(%x: q8[1]) -> (%x) {\n}", `unknown dtype "q8"`},
		{"graph g(%x: f32[1]) -> (%x) {\n  %1 = relu %x {alpha=1} : f32[1]\n}", `no attribute "alpha"`},
		{"graph g(%x: f32[1]) -> (%x) {\n", "unexpected end"},
		{"graph g(%x: f32[1]) -> (%x) {\n  %c = const f32[2] [1]\n}", "has 1 values, want 2"},
	}
	for _, c := range cases {
		_, err := Parse(c.text)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", c.text, err, c.want)
		}
	}
}

func TestWindowOut(t *testing.T) {
	cases := []struct {
		size, k, s, d, lo, hi int
		ceil                  bool
		want                  int
	}{
		{224, 7, 2, 1, 3, 3, false, 112},
		{112, 3, 2, 1, 1, 1, false, 56},
		{5, 3, 2, 1, 0, 0, true, 2},
		{6, 3, 2, 1, 0, 0, true, 3},
		{4, 3, 2, 1, 0, 1, true, 2}, // the third window would start in the right padding
		{32, 3, 1, 2, 0, 0, false, 28},
	}
	for _, c := range cases {
		got, err := windowOut(c.size, c.k, c.s, c.d, c.lo, c.hi, c.ceil)
		if err != nil || got != c.want {
			t.Errorf("windowOut(%+v) = %d, %v; want %d", c, got, err, c.want)
		}
	}
}

func TestMatMulShapes(t *testing.T) {
	cases := []struct{ a, b, want []int }{
		{[]int{2, 3}, []int{3, 4}, []int{2, 4}},
		{[]int{3}, []int{3, 4}, []int{4}},
		{[]int{2, 3}, []int{3}, []int{2}},
		{[]int{5, 1, 2, 3}, []int{7, 3, 4}, []int{5, 7, 2, 4}},
	}
	for _, c := range cases {
		g := NewGraph("m")
		a := g.AddInput("a", Type{DType: F32, Shape: c.a})
		b := g.AddInput("b", Type{DType: F32, Shape: c.b})
		n, err := g.NewNode(OpMatMul, []*Value{a, b}, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if !ShapeEqual(n.Out.Type.Shape, c.want) {
			t.Errorf("matmul %v x %v = %v, want %v", c.a, c.b, n.Out.Type.Shape, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(blockText)
	f.Add("graph g(%x: f32[1]) -> (%x) {\n}\n")
	f.Fuzz(func(t *testing.T, text string) {
		g, err := Parse(text)
		if err != nil {
			return
		}
		_ = Verify(g)
		// Whatever parses must print to text that parses to the same print.
		again, err := Parse(g.String())
		if err != nil {
			t.Fatalf("reparse of printed graph failed: %v\n%s", err, g.String())
		}
		if again.String() != g.String() {
			t.Fatalf("print is not a fixed point:\n%s\n%s", g.String(), again.String())
		}
	})
}

// TestVerifyLayouts: channels-last values may flow between convolutions,
// pools and same-shape element-wise ops of the same layout, and into a
// global pool; never into an op that reads NCHW, nor out of the graph.
func TestVerifyLayouts(t *testing.T) {
	const head = `graph g(%x: f32[1,8,8,8]) -> (%out) {
  %w = const f32[8,8,1,1] @w
  %1 = conv2d %x, %w : f32[1,8,8,8] [k1 layout=nhwc]
`
	for _, c := range []struct {
		name, body, bad string
	}{
		{"conv to maxpool to conv", `  %2 = maxpool2d %1 {kernel=[2,2], strides=[2,2]} : f32[1,8,4,4] [k2 layout=nhwc]
  %out = conv2d %2, %w : f32[1,8,4,4] [k3]
}`, ""},
		{"conv to global pool", `  %out = global_avgpool %1 : f32[1,8,1,1] [k2]
}`, ""},
		{"squeeze-excite scale", `  %2 = global_avgpool %1 : f32[1,8,1,1] [k2]
  %3 = sigmoid %2 : f32[1,8,1,1] [k2]
  %4 = mul %1, %3 : f32[1,8,8,8] [k3 layout=nhwc]
  %out = conv2d %4, %w : f32[1,8,8,8] [k4]
}`, ""},
		{"broadcast read of a channels-last image", `  %2 = global_avgpool %1 : f32[1,8,1,1] [k2]
  %out = mul %2, %1 : f32[1,8,8,8] [k3]
}`, "reads NCHW"},
		{"elementwise of another layout", `  %out = relu %1 : f32[1,8,8,8] [k2]
}`, "reads NCHW"},
		{"channels-last graph output", `  %out = maxpool2d %1 {kernel=[2,2], strides=[2,2]} : f32[1,8,4,4] [k2 layout=nhwc]
}`, "graph output"},
		{"channels-last softmax", `  %out = softmax %1 {axis=1} : f32[1,8,8,8] [k2 layout=nhwc]
}`, "channels-last output on a softmax"},
	} {
		g, err := Parse(head + c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = Verify(g)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.bad)
		}
	}
}

// TestParseSchedule: a schedule's text form reads back, and malformed
// ones are errors.
func TestParseSchedule(t *testing.T) {
	for _, s := range []Schedule{{Kernel: 3, Tile: []int{64, 64, 8, 4, 4}, SplitK: 2, Layout: LayoutNHWC}, {Kernel: 0, Tile: []int{128, 64, 64, 64, 16}},
		{Kernel: 1, Tile: []int{128, 128, 64, 64, 32}, SplitK: 4, Reduce: ReduceCluster, Layout: LayoutNHWC},
		{Kernel: 2, Tile: []int{128, 256, 64, 64, 64}, Persist: 132, Layout: LayoutNHWC}} {
		got, err := ParseSchedule(s.String())
		if err != nil || got.String() != s.String() {
			t.Errorf("ParseSchedule(%q) = %v, %v", s.String(), got, err)
		}
	}
	for _, bad := range []string{"", "k3 tile=1", "[k3 tile=0]", "[k3 split_k=x]", "[k3] x", "[3]", "[k3 reduce=workspace]", "[k3 persist=1]", "[k3 persist=x]"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded", bad)
		}
	}
}
