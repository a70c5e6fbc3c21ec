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

// naiveMatMul is c[i,j] = sum over k of a[i*K+k] * b[k*N+j] in float64.
func naiveMatMul(a, b []float32, M, K, N int) []float64 {
	c := make([]float64, M*N)
	for i := range M {
		for j := range N {
			for k := range K {
				c[i*N+j] += float64(a[i*K+k]) * float64(b[k*N+j])
			}
		}
	}
	return c
}

func TestGemmMatchesNaive(t *testing.T) {
	// N = 600 spans three column blocks; M = 1 is the batch-1 case.
	for _, M := range []int{1, 3} {
		for _, tb := range []int{0, 1} {
			t.Run(fmt.Sprintf("M=%d,trans_b=%d", M, tb), func(t *testing.T) {
				const K, N = 50, 600
				bShape := []int{K, N}
				if tb == 1 {
					bShape = []int{N, K}
				}
				g := graphOf(t, ir.OpGemm, ir.Attrs{"trans_b": tb, "alpha": 0.5, "beta": 2.0}, []int{M, K}, bShape, []int{N})
				in := RandomInputs(g, uint64(M+10*tb))
				outs, err := RunWith(g, in, Options{Workers: 3})
				if err != nil {
					t.Fatal(err)
				}
				b := in[1].Data
				if tb == 1 { // b holds B^T: B[k,j] = b[j*K+k]
					b = make([]float32, K*N)
					for k := range K {
						for j := range N {
							b[k*N+j] = in[1].Data[j*K+k]
						}
					}
				}
				ab := naiveMatMul(in[0].Data, b, M, K, N)
				want := New([]int{M, N})
				for i := range M {
					for j := range N {
						want.Data[i*N+j] = float32(0.5*ab[i*N+j] + 2*float64(in[2].Data[j]))
					}
				}
				expect(t, outs[0], want)
			})
		}
	}
}

func TestMatMulMatchesNaive(t *testing.T) {
	// a [3,1,M,K] x b [4,K,N] -> [3,4,M,N]; N = 300 spans two column blocks.
	for _, N := range []int{6, 300} {
		t.Run(fmt.Sprint("N=", N), func(t *testing.T) {
			const M, K = 5, 7
			g := graphOf(t, ir.OpMatMul, nil, []int{3, 1, M, K}, []int{4, K, N})
			in := RandomInputs(g, 7)
			outs, err := RunWith(g, in, Options{Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			want := New([]int{3, 4, M, N})
			for i := range 3 {
				for j := range 4 {
					c := naiveMatMul(in[0].Data[i*M*K:][:M*K], in[1].Data[j*K*N:][:K*N], M, K, N)
					for e, v := range c {
						want.Data[(i*4+j)*M*N+e] = float32(v)
					}
				}
			}
			expect(t, outs[0], want)
		})
	}
}
