package interp

import (
	"fmt"
	"math"
	"testing"

	"cnnc/ir"
)

func TestUnaryHandWorked(t *testing.T) {
	x := tensor([]int{4}, -2, -0.5, 0.5, 7)
	cases := []struct {
		node string
		want []float32
	}{
		{"relu %x", []float32{0, 0, 0.5, 7}},
		{"neg %x", []float32{2, 0.5, -0.5, -7}},
		{"abs %x", []float32{2, 0.5, 0.5, 7}},
		{"leaky_relu %x {alpha=0.1}", []float32{-0.2, -0.05, 0.5, 7}},
		{"clip %x {max=6, min=-1}", []float32{-1, -0.5, 0.5, 6}},
		{"hard_sigmoid %x {alpha=0.25, beta=0.5}", []float32{0, 0.375, 0.625, 1}},
		{"reciprocal %x", []float32{-0.5, -2, 2, 1.0 / 7}},
	}
	for _, c := range cases {
		t.Run(c.node, func(t *testing.T) {
			got := run(t, "graph g(%x: f32[4]) -> (%1) {\n  %1 = "+c.node+" : f32[4]\n}", x)
			expect(t, got, tensor([]int{4}, c.want...))
		})
	}
}

// TestEveryUnaryOpAppliesItsFunction runs each one-input element-wise op of
// the table, with its default attributes, and checks every element against
// the table's own function: the interpreter must apply exactly that.
func TestEveryUnaryOpAppliesItsFunction(t *testing.T) {
	x := tensor([]int{2, 4}, -3, -1, -0.25, 0, 0.25, 1, 3, 40)
	n := 0
	for _, op := range ir.Ops() {
		if op.Unary == nil {
			continue
		}
		n++
		g := graphOf(t, op, nil, x.Shape)
		outs, err := Run(g, []*Tensor{x})
		if err != nil {
			t.Errorf("%s: %v", op.Name, err)
			continue
		}
		for i, v := range x.Data {
			want := float32(op.Unary(float64(v), g.Nodes[0]))
			got := outs[0].Data[i]
			if got != want && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
				t.Errorf("%s(%v) = %v, want %v", op.Name, v, got, want)
			}
		}
	}
	if n < 15 {
		t.Errorf("found %d unary ops in the table, want all of them", n)
	}
}

func TestBinaryBroadcasting(t *testing.T) {
	cases := []struct {
		name string
		op   string
		a, b *Tensor
		want *Tensor
	}{
		{"row", "add", iota([]int{2, 3}, 0), tensor([]int{3}, 10, 20, 30),
			tensor([]int{2, 3}, 10, 21, 32, 13, 24, 35)},
		{"outer", "mul", tensor([]int{2, 1}, 1, 2), tensor([]int{1, 3}, 1, 10, 100),
			tensor([]int{2, 3}, 1, 10, 100, 2, 20, 200)},
		{"scalar first", "sub", tensor([]int{}, 10), tensor([]int{3}, 1, 2, 3),
			tensor([]int{3}, 9, 8, 7)},
		{"column", "div", iota([]int{2, 2}, 1), tensor([]int{2, 1}, 1, 2),
			tensor([]int{2, 2}, 1, 2, 1.5, 2)},
		{"pow", "pow", tensor([]int{2}, 2, 9), tensor([]int{2}, 3, 0.5),
			tensor([]int{2}, 8, 3)},
		{"max", "max", tensor([]int{3}, 1, 5, -2), tensor([]int{1}, 0),
			tensor([]int{3}, 1, 5, 0)},
		{"min", "min", tensor([]int{3}, 1, 5, -2), tensor([]int{1}, 0),
			tensor([]int{3}, 0, 0, -2)},
		// prelu: slope per channel [2,1] over x [1,2,2].
		{"prelu", "prelu", tensor([]int{1, 2, 2}, -1, 2, -3, 4), tensor([]int{2, 1}, 0.5, 0.25),
			tensor([]int{1, 2, 2}, -0.5, 2, -0.75, 4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(t, fmt.Sprintf("graph g(%%a: f32%s, %%b: f32%s) -> (%%1) {\n  %%1 = %s %%a, %%b : f32%s\n}",
				formatShape(c.a.Shape), formatShape(c.b.Shape), c.op, formatShape(c.want.Shape)), c.a, c.b)
			expect(t, got, c.want)
		})
	}
}

// TestBroadcastMatchesIndexing checks 4-D broadcasting against element by
// element index arithmetic: a size-1 dim of an operand reads index 0.
func TestBroadcastMatchesIndexing(t *testing.T) {
	aShape, bShape, out := []int{2, 1, 3, 1}, []int{4, 1, 5}, []int{2, 4, 3, 5}
	g := graphOf(t, ir.OpSub, nil, aShape, bShape)
	in := RandomInputs(g, 3)
	outs, err := Run(g, in)
	if err != nil {
		t.Fatal(err)
	}
	want := New(out)
	for i := range 2 {
		for j := range 4 {
			for k := range 3 {
				for l := range 5 {
					a := in[0].Data[i*3+k]
					b := in[1].Data[j*5+l]
					want.Data[((i*4+j)*3+k)*5+l] = a - b
				}
			}
		}
	}
	expect(t, outs[0], want)
}
