package interp

import (
	"fmt"
	"testing"

	"cnnc/ir"
)

func TestGemmTransposes(t *testing.T) {
	// A = [[1,2,3],[4,5,6]], B = [[1,2],[3,4],[5,6]]: AB = [[22,28],[49,64]].
	a := tensor([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	at := tensor([]int{3, 2}, 1, 4, 2, 5, 3, 6)
	b := tensor([]int{3, 2}, 1, 2, 3, 4, 5, 6)
	bt := tensor([]int{2, 3}, 1, 3, 5, 2, 4, 6)
	for _, c := range []struct {
		ta, tb int
		a, b   *Tensor
	}{{0, 0, a, b}, {1, 0, at, b}, {0, 1, a, bt}, {1, 1, at, bt}} {
		t.Run(fmt.Sprintf("trans_a=%d,trans_b=%d", c.ta, c.tb), func(t *testing.T) {
			// alpha 2, beta 0.5, c = [1, -1] broadcast over the rows.
			got := run(t, fmt.Sprintf(`graph g(%%a: f32%s, %%b: f32%s) -> (%%1) {
  %%c = const f32[2] [1, -1]
  %%1 = gemm %%a, %%b, %%c {alpha=2, beta=0.5, trans_a=%d, trans_b=%d} : f32[2,2]
}`, formatShape(c.a.Shape), formatShape(c.b.Shape), c.ta, c.tb), c.a, c.b)
			expect(t, got, tensor([]int{2, 2}, 44+0.5, 56-0.5, 98+0.5, 128-0.5))
		})
	}
	t.Run("column c, no alpha", func(t *testing.T) {
		got := run(t, `graph g(%a: f32[2,3], %b: f32[3,2]) -> (%1) {
  %c = const f32[2,1] [10, 20]
  %1 = gemm %a, %b, %c {alpha=1, beta=1, trans_a=0, trans_b=0} : f32[2,2]
}`, a, b)
		expect(t, got, tensor([]int{2, 2}, 32, 38, 69, 84))
	})
	t.Run("no c", func(t *testing.T) {
		got := run(t, `graph g(%a: f32[2,3], %b: f32[3,2]) -> (%1) {
  %1 = gemm %a, %b {alpha=1, beta=1, trans_a=0, trans_b=0} : f32[2,2]
}`, a, b)
		expect(t, got, tensor([]int{2, 2}, 22, 28, 49, 64))
	})
}

func TestMatMulBroadcasting(t *testing.T) {
	cases := []struct {
		name string
		a, b *Tensor
		want *Tensor
	}{
		{"2-D", tensor([]int{2, 3}, 1, 2, 3, 4, 5, 6), tensor([]int{3, 2}, 1, 2, 3, 4, 5, 6),
			tensor([]int{2, 2}, 22, 28, 49, 64)},
		{"1-D a is a row", tensor([]int{3}, 1, 2, 3), tensor([]int{3, 2}, 1, 2, 3, 4, 5, 6),
			tensor([]int{2}, 22, 28)},
		{"1-D b is a column", tensor([]int{2, 3}, 1, 2, 3, 4, 5, 6), tensor([]int{3}, 1, 0, -1),
			tensor([]int{2}, -2, -2)},
		{"1-D by 1-D is a scalar", tensor([]int{3}, 1, 2, 3), tensor([]int{3}, 4, 5, 6),
			tensor([]int{}, 32)},
		// Batch 2 of a against one b: [[1,2],[3,4]] and [[5,6],[7,8]] times
		// [[1,1],[0,1]].
		{"b broadcast over a's batch", tensor([]int{2, 2, 2}, 1, 2, 3, 4, 5, 6, 7, 8), tensor([]int{2, 2}, 1, 1, 0, 1),
			tensor([]int{2, 2, 2}, 1, 3, 3, 7, 5, 11, 7, 15)},
		// a [2,1,1,2] and b [3,2,1]: out[i,j] = a_i . b_j with a_0 = (1,2),
		// a_1 = (3,4), b = (1,0), (0,1), (1,1).
		{"both batches broadcast", tensor([]int{2, 1, 1, 2}, 1, 2, 3, 4), tensor([]int{3, 2, 1}, 1, 0, 0, 1, 1, 1),
			tensor([]int{2, 3, 1, 1}, 1, 2, 3, 3, 4, 7)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := graphOf(t, ir.OpMatMul, nil, c.a.Shape, c.b.Shape)
			outs, err := Run(g, []*Tensor{c.a, c.b})
			if err != nil {
				t.Fatal(err)
			}
			expect(t, outs[0], c.want)
		})
	}
}

func TestMatMulMatchesNaive(t *testing.T) {
	// a [3,1,5,7] x b [4,7,6] -> [3,4,5,6].
	g := graphOf(t, ir.OpMatMul, nil, []int{3, 1, 5, 7}, []int{4, 7, 6})
	in := RandomInputs(g, 7)
	outs, err := RunWith(g, in, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	a, b := in[0].Data, in[1].Data
	want := New([]int{3, 4, 5, 6})
	for i := range 3 {
		for j := range 4 {
			for r := range 5 {
				for c := range 6 {
					var s float64
					for k := range 7 {
						s += float64(a[(i*5+r)*7+k]) * float64(b[(j*7+k)*6+c])
					}
					want.Data[((i*4+j)*5+r)*6+c] = float32(s)
				}
			}
		}
	}
	expect(t, outs[0], want)
}
