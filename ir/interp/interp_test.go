package interp

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"cnnc/ir"
)

// tensor makes a tensor of shape holding vals.
func tensor(shape []int, vals ...float32) *Tensor {
	if int64(len(vals)) != ir.ShapeElems(shape) {
		panic("test tensor: wrong number of values")
	}
	return &Tensor{Shape: shape, Data: vals}
}

// iota returns a tensor of shape holding start, start+1, ... in row-major
// order.
func iota(shape []int, start float32) *Tensor {
	t := New(shape)
	for i := range t.Data {
		t.Data[i] = start + float32(i)
	}
	return t
}

func parse(t *testing.T, text string) *ir.Graph {
	t.Helper()
	g, err := ir.Parse(text)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return g
}

// run parses text, runs it on inputs and returns its first output.
func run(t *testing.T, text string, inputs ...*Tensor) *Tensor {
	t.Helper()
	outs, err := Run(parse(t, text), inputs)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return outs[0]
}

// expect checks got against want to within float32 rounding of values
// computed in float64.
func expect(t *testing.T, got, want *Tensor) {
	t.Helper()
	if err := Compare(got, want, 1e-6, 1e-6); err != nil {
		t.Errorf("%v\n got %v\nwant %v", err, got.Data, want.Data)
	}
}

// graphOf builds a one-node graph of op over fresh inputs of the given
// shapes, with attrs defaulted and the output type from the shape rule.
func graphOf(t *testing.T, op *ir.OpInfo, attrs ir.Attrs, shapes ...[]int) *ir.Graph {
	t.Helper()
	g := ir.NewGraph("g")
	var ins []*ir.Value
	for i, s := range shapes {
		ins = append(ins, g.AddInput("x"+string(rune('0'+i)), ir.Type{DType: ir.F32, Shape: s}))
	}
	n, err := g.NewNode(op, ins, attrs, "")
	if err != nil {
		t.Fatalf("%s %v: %v", op.Name, attrs, err)
	}
	g.Outputs = []*ir.Value{n.Out}
	return g
}

func TestEveryOpIsSupported(t *testing.T) {
	for _, op := range ir.Ops() {
		if !supported(op) {
			t.Errorf("op %s of the op table has no interpreter kernel", op.Name)
		}
	}
}

const residualBlock = `graph block(%x: f32[1,4,5,5]) -> (%3) {
  %w = const f32[4,4,3,3] @w0
  %1 = conv2d %x, %w {dilations=[1,1], group=1, pads=[1,1,1,1], strides=[1,1]} : f32[1,4,5,5]  # /conv
  %2 = relu %1 : f32[1,4,5,5]
  %3 = add %2, %x : f32[1,4,5,5]
}`

func TestRunErrors(t *testing.T) {
	g := parse(t, `graph g(%x: f32[2,3], %y: f32[3]) -> (%1) {
  %1 = add %x, %y : f32[2,3]
}`)
	good := []*Tensor{New([]int{2, 3}), New([]int{3})}
	cases := []struct {
		name   string
		g      *ir.Graph
		inputs []*Tensor
		want   string
	}{
		{"too few inputs", g, good[:1], "graph g: got 1 inputs, want 2"},
		{"too many inputs", g, append(good, New([]int{1})), "got 3 inputs, want 2"},
		{"wrong shape", g, []*Tensor{good[0], New([]int{1, 3})}, "input 1 %y: got shape [1,3], want [3]"},
		{"nil input", g, []*Tensor{nil, good[1]}, "input 0 %x: got nil, want shape [2,3]"},
		{"short data", g, []*Tensor{{Shape: []int{2, 3}, Data: make([]float32, 5)}, good[1]}, "input 0 %x: got 5 values, want 6"},
		{"const without data", parse(t, residualBlock), []*Tensor{New([]int{1, 4, 5, 5})},
			"interp: %w = const: const @w0 has no data; load the weights or set Options.FillMissing"},
		{"graph that does not verify", parse(t, `graph g(%x: f32[1,1,4,4]) -> (%1) {
  %1 = maxpool2d %x {kernel=[2,2]} : f32[1,1,2,2]
}`), []*Tensor{New([]int{1, 1, 4, 4})}, "graph g does not verify: %1 = maxpool2d: got type f32[1,1,2,2], want f32[1,1,3,3]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outs, err := Run(c.g, c.inputs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run = %v, %v; want an error containing %q", outs, err, c.want)
			}
		})
	}
}

func TestUnreadConstNeedsNoData(t *testing.T) {
	// Consts are decoded when first read, so a dead one without data
	// (left for dead-code elimination) does not stop the run.
	got := run(t, `graph g(%x: f32[2]) -> (%1) {
  %w = const f32[2] @never_loaded
  %1 = neg %x : f32[2]
}`, tensor([]int{2}, 1, -2))
	expect(t, got, tensor([]int{2}, -1, 2))
}

func TestUnsupportedOpIsAnError(t *testing.T) {
	frob := &ir.OpInfo{Name: "frob", Class: ir.ClassElementwise, MinIn: 1, MaxIn: 1,
		Infer: func(n *ir.Node) (ir.Type, error) { return n.Inputs[0].Type, nil }}
	g := graphOf(t, frob, nil, []int{2})
	g.Nodes[0].Origin = "Frob_0"
	_, err := Run(g, []*Tensor{New([]int{2})})
	want := `interp: %1 = frob (onnx node "Frob_0"): op frob is not supported by the interpreter`
	if err == nil || err.Error() != want {
		t.Errorf("Run = %v, want %q", err, want)
	}
}

func TestFillMissing(t *testing.T) {
	g := parse(t, `graph g(%x: f32[1,2,2,2]) -> (%1, %a, %b) {
  %a = const f32[2] @a
  %b = const f32[2] @b
  %m = const f32[2] [0, 0]
  %v = const f32[2] @v
  %1 = batchnorm %x, %a, %b, %m, %v {epsilon=0} : f32[1,2,2,2]
}`)
	x := Random([]int{1, 2, 2, 2}, 1)
	first, err := RunWith(g, []*Tensor{x}, Options{FillMissing: 42})
	if err != nil {
		t.Fatal(err)
	}
	again, err := RunWith(g, []*Tensor{x}, Options{FillMissing: 42})
	if err != nil {
		t.Fatal(err)
	}
	other, err := RunWith(g, []*Tensor{x}, Options{FillMissing: 43})
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if !slices.Equal(first[i].Data, again[i].Data) {
			t.Errorf("output %d differs between two runs with the same seed", i)
		}
	}
	if slices.Equal(first[1].Data, other[1].Data) {
		t.Errorf("const @a is %v with seeds 42 and 43, want different data", first[1].Data)
	}
	if slices.Equal(first[1].Data, first[2].Data) {
		t.Errorf("consts @a and @b both hold %v, want different data", first[1].Data)
	}
	// The variance is drawn positive, so batchnorm gives numbers.
	for i, v := range first[0].Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("batchnorm output %d is %v, want a finite number", i, v)
		}
	}
}

func TestOutputsNeverAlias(t *testing.T) {
	g := parse(t, `graph g(%x: f32[2]) -> (%x, %1, %1) {
  %1 = neg %x : f32[2]
}`)
	x := tensor([]int{2}, 1, 2)
	outs, err := Run(g, []*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	outs[0].Data[0] = 100
	outs[1].Data[0] = 200
	if x.Data[0] != 1 {
		t.Errorf("writing output 0 changed the input to %v", x.Data)
	}
	if outs[2].Data[0] != -1 {
		t.Errorf("writing output 1 changed output 2 to %v", outs[2].Data)
	}
}

func TestReleasePlan(t *testing.T) {
	g := parse(t, `graph g(%x: f32[2]) -> (%3) {
  %1 = neg %x : f32[2]
  %2 = abs %x : f32[2]
  %dead = exp %1 : f32[2]
  %3 = add %1, %2 : f32[2]
}`)
	var got [][]string
	for _, vs := range releasePlan(g) {
		var names []string
		for _, v := range vs {
			names = append(names, v.Name)
		}
		got = append(got, names)
	}
	// %x is last read by node 1, %dead is never read, %1 and %2 by node
	// 3; %3 is an output and is kept.
	want := [][]string{nil, {"x"}, {"dead"}, {"1", "2"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release plan (-want +got):\n%s", diff)
	}
}

func TestWorkersGiveIdenticalResults(t *testing.T) {
	g := parse(t, residualBlock)
	x := RandomInputs(g, 5)
	one, err := RunWith(g, x, Options{Workers: 1, FillMissing: 9})
	if err != nil {
		t.Fatal(err)
	}
	three, err := RunWith(g, x, Options{Workers: 3, FillMissing: 9})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one[0].Data, three[0].Data) {
		t.Errorf("1 worker and 3 workers disagree:\n%v\n%v", one[0].Data, three[0].Data)
	}
}

func TestPanicInWorkerIsReraised(t *testing.T) {
	e := &evaluator{workers: 4}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "boom") {
			t.Errorf("recovered %v, want the worker's panic", r)
		}
	}()
	e.parallel(100, func(_, i int) {
		if i == 57 {
			panic("boom")
		}
	})
	t.Errorf("parallel returned normally after a worker panicked")
}

func TestRandom(t *testing.T) {
	a, b, c := Random([]int{1000}, 3), Random([]int{1000}, 3), Random([]int{1000}, 4)
	if !slices.Equal(a.Data, b.Data) {
		t.Errorf("Random is not deterministic")
	}
	if slices.Equal(a.Data, c.Data) {
		t.Errorf("seeds 3 and 4 give the same data")
	}
	var sum float64
	for i, v := range a.Data {
		if v < -1 || v >= 1 || v == 0 {
			t.Fatalf("element %d is %v, want a non-zero value in [-1,1)", i, v)
		}
		sum += float64(v)
	}
	// The mean of 1000 uniform values on [-1,1) has standard deviation
	// 1/sqrt(3000) ~ 0.018; 0.1 is more than 5 of them.
	if mean := sum / 1000; math.Abs(mean) > 0.1 {
		t.Errorf("mean is %v, want about 0", mean)
	}
	g := parse(t, `graph g(%x: f32[2,3], %y: f32[4]) -> (%x) {
}`)
	in := RandomInputs(g, 10)
	if len(in) != 2 || !slices.Equal(in[0].Shape, []int{2, 3}) || !slices.Equal(in[1].Data, Random([]int{4}, 11).Data) {
		t.Errorf("RandomInputs = %v, want Random([2,3], 10) and Random([4], 11)", in)
	}
}

func TestCompare(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	v := func(vals ...float32) *Tensor { return tensor([]int{2, 2}, vals...) }
	cases := []struct {
		name       string
		got, want  *Tensor
		rtol, atol float64
		err        string // "" for a match
	}{
		{"equal", v(1, 2, 3, 4), v(1, 2, 3, 4), 0, 0, ""},
		{"within atol", v(1.05, 2, 3, 4), v(1, 2, 3, 4), 0, 0.1, ""},
		{"within rtol", v(1, 2, 3, 4.3), v(1, 2, 3, 4), 0.1, 0, ""},
		{"nan equals nan, inf equals inf", v(nan, inf, -inf, 0), v(nan, inf, -inf, 0), 0, 0, ""},
		{"worst of two", v(1.5, 2, 3, 7), v(1, 2, 3, 4), 0, 0.1,
			"2 of 4 elements differ (rtol 0, atol 0.1); worst at [1,1]: got 7, want 4"},
		{"nan against a number", v(1, nan, 3, 4.5), v(1, 2, 3, 4), 0, 0.1, "2 of 4 elements differ (rtol 0, atol 0.1); worst at [0,1]: got NaN, want 2"},
		{"opposite infinities", v(1, 2, 3, inf), v(1, 2, 3, -inf), 1, 1, "worst at [1,1]: got +Inf, want -Inf"},
		{"finite against inf", v(1, 2, 3, 4), v(1, 2, 3, inf), 1, 1, "1 of 4 elements differ"},
		{"shape", tensor([]int{4}, 1, 2, 3, 4), v(1, 2, 3, 4), 0, 0, "got shape [4], want [2,2]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Compare(c.got, c.want, c.rtol, c.atol)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("Compare = %v, want a match", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("Compare = %v, want an error containing %q", err, c.err)
			}
		})
	}
}

func TestRelL2(t *testing.T) {
	want := tensor([]int{2}, 3, 4)
	cases := []struct {
		got  *Tensor
		want float64
	}{
		{tensor([]int{2}, 3, 4), 0},
		{tensor([]int{2}, 3, 1), 0.6}, // |(0,-3)| / |(3,4)| = 3/5
		{tensor([]int{2}, 0, 0), 1},
		{tensor([]int{3}, 3, 4, 0), math.Inf(1)},
	}
	for _, c := range cases {
		if got := RelL2(c.got, want); math.Abs(got-c.want) > 1e-12 && got != c.want {
			t.Errorf("RelL2(%v, %v) = %v, want %v", c.got.Data, want.Data, got, c.want)
		}
	}
	if got := RelL2(tensor([]int{1}, 1), tensor([]int{1}, 0)); !math.IsInf(got, 1) {
		t.Errorf("RelL2 against zeros = %v, want +Inf", got)
	}
}
