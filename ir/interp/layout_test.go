package interp

import (
	"fmt"
	"testing"

	"cnnc/ir"
)

func TestReshape(t *testing.T) {
	x := iota([]int{2, 3}, 1)
	got := run(t, `graph g(%x: f32[2,3]) -> (%1) {
  %1 = reshape %x {shape=[3,1,2]} : f32[3,1,2]
}`, x)
	expect(t, got, tensor([]int{3, 1, 2}, 1, 2, 3, 4, 5, 6))
}

func TestTranspose(t *testing.T) {
	got := run(t, `graph g(%x: f32[2,3]) -> (%1) {
  %1 = transpose %x {perm=[1,0]} : f32[3,2]
}`, iota([]int{2, 3}, 1))
	expect(t, got, tensor([]int{3, 2}, 1, 4, 2, 5, 3, 6))

	// perm [2,0,1]: y[i,j,k] = x[j,k,i], with x[a,b,c] = 100a + 10b + c.
	x := New([]int{2, 3, 4})
	for a := range 2 {
		for b := range 3 {
			for c := range 4 {
				x.Data[(a*3+b)*4+c] = float32(100*a + 10*b + c)
			}
		}
	}
	got = run(t, `graph g(%x: f32[2,3,4]) -> (%1) {
  %1 = transpose %x {perm=[2,0,1]} : f32[4,2,3]
}`, x)
	want := New([]int{4, 2, 3})
	for i := range 4 {
		for j := range 2 {
			for k := range 3 {
				want.Data[(i*2+j)*3+k] = float32(100*j + 10*k + i)
			}
		}
	}
	expect(t, got, want)
}

func TestConcat(t *testing.T) {
	got := run(t, `graph g(%a: f32[2,1], %b: f32[2,2]) -> (%1) {
  %1 = concat %a, %b, %a {axis=1} : f32[2,4]
}`, tensor([]int{2, 1}, 1, 2), tensor([]int{2, 2}, 10, 11, 20, 21))
	expect(t, got, tensor([]int{2, 4}, 1, 10, 11, 1, 2, 20, 21, 2))
	got = run(t, `graph g(%a: f32[1,2], %b: f32[2,2]) -> (%1) {
  %1 = concat %a, %b {axis=0} : f32[3,2]
}`, tensor([]int{1, 2}, 1, 2), tensor([]int{2, 2}, 3, 4, 5, 6))
	expect(t, got, tensor([]int{3, 2}, 1, 2, 3, 4, 5, 6))
}

func TestSlice(t *testing.T) {
	x := iota([]int{10}, 0)
	cases := []struct {
		starts, ends, steps int
		want                []float32
	}{
		{2, 7, 2, []float32{2, 4, 6}},
		{8, 1, -3, []float32{8, 5, 2}},
		{2, -1, -1, []float32{2, 1, 0}}, // end -1 (normalized) runs through element 0
		{9, -1, -4, []float32{9, 5, 1}},
		{3, 3, 1, []float32{}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d:%d:%d", c.starts, c.ends, c.steps), func(t *testing.T) {
			g := graphOf(t, ir.OpSlice, ir.Attrs{"starts": []int{c.starts}, "ends": []int{c.ends}, "steps": []int{c.steps}}, []int{10})
			outs, err := Run(g, []*Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			expect(t, outs[0], tensor([]int{len(c.want)}, c.want...))
		})
	}
	// Rows 2, 0 and columns 0, 3 of 0..11 in a 3x4.
	got := run(t, `graph g(%x: f32[3,4]) -> (%1) {
  %1 = slice %x {ends=[-1,4], starts=[2,0], steps=[-2,3]} : f32[2,2]
}`, iota([]int{3, 4}, 0))
	expect(t, got, tensor([]int{2, 2}, 8, 11, 0, 3))
}

func TestPad(t *testing.T) {
	x := tensor([]int{2, 2}, 1, 2, 3, 4)
	got := run(t, `graph g(%x: f32[2,2]) -> (%1) {
  %1 = pad %x {pads=[0,1,1,1], value=-5} : f32[3,4]
}`, x)
	expect(t, got, tensor([]int{3, 4},
		-5, 1, 2, -5,
		-5, 3, 4, -5,
		-5, -5, -5, -5))
	// One row on top, the last column cropped.
	got = run(t, `graph g(%x: f32[2,2]) -> (%1) {
  %1 = pad %x {pads=[1,0,0,-1], value=9} : f32[3,1]
}`, x)
	expect(t, got, tensor([]int{3, 1}, 9, 1, 3))
	// Crop the first row and column, pad after.
	got = run(t, `graph g(%x: f32[2,3]) -> (%1) {
  %1 = pad %x {pads=[-1,-1,1,0], value=0} : f32[2,2]
}`, iota([]int{2, 3}, 1))
	expect(t, got, tensor([]int{2, 2}, 5, 6, 0, 0))
}
