package interp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"cnnc/ir"
)

func TestMaxPoolHandWorked(t *testing.T) {
	t.Run("ceil mode", func(t *testing.T) {
		// x = -1 .. -16 in a 4x4; kernel 3, stride 2. ceil_mode adds a
		// second window per dim that starts at 2 and hangs over the edge;
		// it sees only real elements (the max of negatives, never a
		// padding zero).
		x := iota([]int{1, 1, 4, 4}, 1)
		for i := range x.Data {
			x.Data[i] = -x.Data[i]
		}
		got := run(t, `graph g(%x: f32[1,1,4,4]) -> (%1) {
  %1 = maxpool2d %x {ceil_mode=1, dilations=[1,1], kernel=[3,3], pads=[0,0,0,0], strides=[2,2]} : f32[1,1,2,2]
}`, x)
		expect(t, got, tensor([]int{1, 1, 2, 2}, -1, -3, -9, -11))
	})
	t.Run("padding never wins", func(t *testing.T) {
		got := run(t, `graph g(%x: f32[1,1,2,2]) -> (%1) {
  %1 = maxpool2d %x {ceil_mode=0, dilations=[1,1], kernel=[2,2], pads=[1,1,1,1], strides=[1,1]} : f32[1,1,3,3]
}`, tensor([]int{1, 1, 2, 2}, -1, -2, -3, -4))
		expect(t, got, tensor([]int{1, 1, 3, 3},
			-1, -1, -2,
			-1, -1, -2,
			-3, -3, -4))
	})
	t.Run("dilation and NaN", func(t *testing.T) {
		// Kernel 2 dilated by 2 over a row of 5: windows {0,2}, {1,3}, {2,4}.
		nan := float32(math.NaN())
		got := run(t, `graph g(%x: f32[1,1,1,5]) -> (%1) {
  %1 = maxpool2d %x {ceil_mode=0, dilations=[1,2], kernel=[1,2], pads=[0,0,0,0], strides=[1,1]} : f32[1,1,1,3]
}`, tensor([]int{1, 1, 1, 5}, 5, nan, 1, 0, 3))
		expect(t, got, tensor([]int{1, 1, 1, 3}, 5, nan, 3))
	})
}

func TestAvgPoolHandWorked(t *testing.T) {
	x := iota([]int{1, 1, 3, 3}, 1) // 1 2 3 / 4 5 6 / 7 8 9
	// Kernel 2, stride 2, pads 1: the windows hold {1}, {2,3}, {4,7},
	// {5,6,8,9}, each inside the padded 5x5 extent with all four taps.
	for _, c := range []struct {
		include int
		want    []float32
	}{
		{0, []float32{1, 5.0 / 2, 11.0 / 2, 28.0 / 4}},
		{1, []float32{1.0 / 4, 5.0 / 4, 11.0 / 4, 28.0 / 4}},
	} {
		t.Run(fmt.Sprintf("count_include_pad=%d", c.include), func(t *testing.T) {
			got := run(t, fmt.Sprintf(`graph g(%%x: f32[1,1,3,3]) -> (%%1) {
  %%1 = avgpool2d %%x {ceil_mode=0, count_include_pad=%d, dilations=[1,1], kernel=[2,2], pads=[1,1,1,1], strides=[2,2]} : f32[1,1,2,2]
}`, c.include), x)
			expect(t, got, tensor([]int{1, 1, 2, 2}, c.want...))
		})
	}
	// A row of 5, kernel 3, stride 2, left pad 1, ceil_mode: windows start
	// at -1, 1 and 3. The last one covers 3, 4 and position 5, which lies
	// past the (zero) right pad: it is never counted.
	row := iota([]int{1, 1, 1, 5}, 1)
	for _, c := range []struct {
		include int
		want    []float32
	}{
		{0, []float32{3.0 / 2, 9.0 / 3, 9.0 / 2}},
		{1, []float32{3.0 / 3, 9.0 / 3, 9.0 / 2}},
	} {
		t.Run(fmt.Sprintf("ceil_mode, count_include_pad=%d", c.include), func(t *testing.T) {
			got := run(t, fmt.Sprintf(`graph g(%%x: f32[1,1,1,5]) -> (%%1) {
  %%1 = avgpool2d %%x {ceil_mode=1, count_include_pad=%d, dilations=[1,1], kernel=[1,3], pads=[0,1,0,0], strides=[1,2]} : f32[1,1,1,3]
}`, c.include), row)
			expect(t, got, tensor([]int{1, 1, 1, 3}, c.want...))
		})
	}
}

// naivePool evaluates a pool window by window, testing every tap.
func naivePool(x *Tensor, avg, include bool, k, p, s, d []int, oh, ow int) *Tensor {
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := New([]int{N, C, oh, ow})
	for nc := 0; nc < N*C; nc++ {
		for y := 0; y < oh; y++ {
			for xo := 0; xo < ow; xo++ {
				sum, count, m := 0.0, 0, math.Inf(-1)
				for kh := 0; kh < k[0]; kh++ {
					for kw := 0; kw < k[1]; kw++ {
						ih, iw := y*s[0]-p[0]+kh*d[0], xo*s[1]-p[1]+kw*d[1]
						inImage := ih >= 0 && ih < H && iw >= 0 && iw < W
						padded := ih >= -p[0] && ih < H+p[2] && iw >= -p[1] && iw < W+p[3]
						if inImage {
							v := float64(x.Data[(nc*H+ih)*W+iw])
							sum += v
							m = math.Max(m, v)
						}
						if inImage || (include && padded) {
							count++
						}
					}
				}
				r := m
				if avg {
					r = sum / float64(count)
				}
				out.Data[(nc*oh+y)*ow+xo] = float32(r)
			}
		}
	}
	return out
}

func TestPoolMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	checked := 0
	for i := 0; i < 200; i++ {
		k := []int{1 + r.IntN(4), 1 + r.IntN(4)}
		d := []int{1 + r.IntN(2), 1 + r.IntN(2)}
		s := []int{1 + r.IntN(3), 1 + r.IntN(3)}
		// Pads below the kernel span, so every window sees real input.
		p := []int{r.IntN(k[0]), r.IntN(k[1]), r.IntN(k[0]), r.IntN(k[1])}
		x := []int{1 + r.IntN(2), 1 + r.IntN(3), 4 + r.IntN(6), 4 + r.IntN(6)}
		ceil, include := r.IntN(2), r.IntN(2)
		attrs := ir.Attrs{"kernel": k, "dilations": d, "strides": s, "pads": p, "ceil_mode": ceil}
		for _, op := range []*ir.OpInfo{ir.OpMaxPool, ir.OpAvgPool} {
			if op == ir.OpAvgPool {
				attrs["count_include_pad"] = include
			}
			g := ir.NewGraph("g")
			in := g.AddInput("x", ir.Type{DType: ir.F32, Shape: x})
			n, err := g.NewNode(op, []*ir.Value{in}, attrs, "")
			if err != nil {
				continue // the window does not fit this input
			}
			g.Outputs = []*ir.Value{n.Out}
			xs := Random(x, uint64(i))
			outs, err := RunWith(g, []*Tensor{xs}, Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			o := n.Out.Type.Shape
			want := naivePool(xs, op == ir.OpAvgPool, include == 1, k, p, s, d, o[2], o[3])
			if err := Compare(outs[0], want, 1e-6, 1e-6); err != nil {
				t.Fatalf("%s\n%v", n, err)
			}
			checked++
		}
	}
	if checked < 300 {
		t.Errorf("only %d of 400 random pools fit their input, want most of them checked", checked)
	}
}

func TestGlobalPools(t *testing.T) {
	x := tensor([]int{1, 2, 2, 2}, 1, 2, 3, 4, -1, -2, -3, -4)
	got := run(t, `graph g(%x: f32[1,2,2,2]) -> (%1) {
  %1 = global_avgpool %x : f32[1,2,1,1]
}`, x)
	expect(t, got, tensor([]int{1, 2, 1, 1}, 2.5, -2.5))
	got = run(t, `graph g(%x: f32[1,2,2,2]) -> (%1) {
  %1 = global_maxpool %x : f32[1,2,1,1]
}`, x)
	expect(t, got, tensor([]int{1, 2, 1, 1}, 4, -1))
	// Rank 3: one spatial dim.
	got = run(t, `graph g(%x: f32[2,1,3]) -> (%1) {
  %1 = global_avgpool %x : f32[2,1,1]
}`, iota([]int{2, 1, 3}, 0))
	expect(t, got, tensor([]int{2, 1, 1}, 1, 4))
}
