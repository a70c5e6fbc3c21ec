package interp

import (
	"fmt"
	"testing"

	"cnnc/ir"
)

func TestConvHandWorked(t *testing.T) {
	x := iota([]int{1, 1, 3, 3}, 1) // 1 2 3 / 4 5 6 / 7 8 9
	t.Run("plus kernel, pads 1, bias", func(t *testing.T) {
		// Each output is its pixel plus its four neighbours, padding
		// reading zero, plus the bias 0.5.
		got := run(t, `graph g(%x: f32[1,1,3,3]) -> (%1) {
  %w = const f32[1,1,3,3] [0, 1, 0, 1, 1, 1, 0, 1, 0]
  %b = const f32[1] [0.5]
  %1 = conv2d %x, %w, %b {dilations=[1,1], group=1, pads=[1,1,1,1], strides=[1,1]} : f32[1,1,3,3]
}`, x)
		expect(t, got, tensor([]int{1, 1, 3, 3},
			1+2+4+.5, 2+1+3+5+.5, 3+2+6+.5,
			4+1+7+5+.5, 5+2+8+4+6+.5, 6+3+9+5+.5,
			7+4+8+.5, 8+7+9+5+.5, 9+8+6+.5))
	})
	t.Run("stride 2, asymmetric pads", func(t *testing.T) {
		// pads top=1, left=0, bottom=0, right=1; output (oh, ow) reads
		// rows 2oh-1, 2oh and columns 2ow, 2ow+1. Weights 1, 10, 100,
		// 1000 show which tap read what.
		got := run(t, `graph g(%x: f32[1,1,3,3]) -> (%1) {
  %w = const f32[1,1,2,2] [1, 10, 100, 1000]
  %1 = conv2d %x, %w {dilations=[1,1], group=1, pads=[1,0,0,1], strides=[2,2]} : f32[1,1,2,2]
}`, x)
		expect(t, got, tensor([]int{1, 1, 2, 2},
			100*1+1000*2, 100*3, // row -1 is padding, as is column 3
			1*4+10*5+100*7+1000*8, 1*6+100*9))
	})
	t.Run("dilation 2", func(t *testing.T) {
		// A 2x2 kernel dilated by 2 reads the four corners.
		got := run(t, `graph g(%x: f32[1,1,3,3]) -> (%1) {
  %w = const f32[1,1,2,2] [1, 10, 100, 1000]
  %1 = conv2d %x, %w {dilations=[2,2], group=1, pads=[0,0,0,0], strides=[1,1]} : f32[1,1,1,1]
}`, x)
		expect(t, got, tensor([]int{1, 1, 1, 1}, 1*1+10*3+100*7+1000*9))
	})
	t.Run("depthwise", func(t *testing.T) {
		got := run(t, `graph g(%x: f32[1,2,1,1]) -> (%1) {
  %w = const f32[2,1,1,1] [10, 100]
  %1 = conv2d %x, %w {dilations=[1,1], group=2, pads=[0,0,0,0], strides=[1,1]} : f32[1,2,1,1]
}`, tensor([]int{1, 2, 1, 1}, 2, 3))
		expect(t, got, tensor([]int{1, 2, 1, 1}, 20, 300))
	})
	t.Run("two groups of two channels", func(t *testing.T) {
		// Output channel 0 and 1 read input channels 0-1, 2 and 3 read 2-3.
		got := run(t, `graph g(%x: f32[1,4,1,1]) -> (%1) {
  %w = const f32[4,2,1,1] [1, 10, 2, 20, 3, 30, 4, 40]
  %1 = conv2d %x, %w {dilations=[1,1], group=2, pads=[0,0,0,0], strides=[1,1]} : f32[1,4,1,1]
}`, tensor([]int{1, 4, 1, 1}, 1, 2, 3, 4))
		expect(t, got, tensor([]int{1, 4, 1, 1}, 1+10*2, 2+20*2, 3*3+30*4, 4*3+40*4))
	})
}

// naiveConv is the definition of conv2d as seven nested loops with an
// explicit bounds test, accumulated in float64.
func naiveConv(x, w *Tensor, bias []float32, group int, pads, strides, dil []int, oh, ow int) *Tensor {
	N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	M, Cg, KH, KW := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	out := New([]int{N, M, oh, ow})
	at := func(t *Tensor, i ...int) float64 {
		off := 0
		for d, v := range i {
			off = off*t.Shape[d] + v
		}
		return float64(t.Data[off])
	}
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			g := m / (M / group)
			for y := 0; y < oh; y++ {
				for xo := 0; xo < ow; xo++ {
					var s float64
					if bias != nil {
						s = float64(bias[m])
					}
					for c := 0; c < Cg; c++ {
						for kh := 0; kh < KH; kh++ {
							for kw := 0; kw < KW; kw++ {
								ih := y*strides[0] - pads[0] + kh*dil[0]
								iw := xo*strides[1] - pads[1] + kw*dil[1]
								if ih >= 0 && ih < H && iw >= 0 && iw < W {
									s += at(x, n, g*Cg+c, ih, iw) * at(w, m, c, kh, kw)
								}
							}
						}
					}
					out.Data[((n*M+m)*oh+y)*ow+xo] = float32(s)
				}
			}
		}
	}
	_ = C
	return out
}

func TestConvMatchesNaive(t *testing.T) {
	cases := []struct {
		x, w                   []int
		group                  int
		pads, strides, dilates []int
		bias                   bool
	}{
		{[]int{1, 3, 7, 7}, []int{4, 3, 3, 3}, 1, []int{1, 1, 1, 1}, []int{1, 1}, []int{1, 1}, true},
		{[]int{2, 4, 9, 8}, []int{6, 2, 3, 2}, 2, []int{0, 2, 1, 0}, []int{2, 3}, []int{1, 1}, true},
		{[]int{1, 6, 10, 11}, []int{6, 1, 3, 3}, 6, []int{2, 2, 2, 2}, []int{1, 2}, []int{2, 2}, false},
		{[]int{1, 4, 8, 8}, []int{8, 4, 1, 1}, 1, []int{0, 0, 0, 0}, []int{2, 2}, []int{1, 1}, false},
		{[]int{1, 2, 12, 9}, []int{3, 2, 5, 3}, 1, []int{3, 0, 1, 4}, []int{3, 2}, []int{2, 3}, true},
		{[]int{1, 3, 5, 5}, []int{3, 1, 7, 7}, 3, []int{3, 3, 3, 3}, []int{1, 1}, []int{1, 1}, true}, // kernel wider than input
		// Four input channels at a time (stride 1), with remainders of 2 and 3.
		{[]int{1, 8, 6, 7}, []int{5, 8, 3, 3}, 1, []int{1, 2, 0, 1}, []int{1, 1}, []int{1, 1}, true},
		{[]int{2, 12, 9, 9}, []int{4, 6, 3, 2}, 2, []int{2, 1, 2, 1}, []int{2, 1}, []int{2, 3}, false},
		{[]int{1, 7, 5, 6}, []int{3, 7, 1, 1}, 1, []int{0, 0, 0, 0}, []int{1, 1}, []int{1, 1}, true},
		{[]int{1, 8, 6, 7}, []int{5, 8, 3, 3}, 1, []int{1, 1, 1, 1}, []int{1, 2}, []int{1, 1}, false}, // four channels, stride 2 in width
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			shapes := [][]int{c.x, c.w}
			if c.bias {
				shapes = append(shapes, []int{c.w[0]})
			}
			g := graphOf(t, ir.OpConv2D, ir.Attrs{"group": c.group, "pads": c.pads, "strides": c.strides, "dilations": c.dilates}, shapes...)
			in := RandomInputs(g, uint64(100*i))
			got, err := RunWith(g, in, Options{Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			var bias []float32
			if c.bias {
				bias = in[2].Data
			}
			o := g.Outputs[0].Type.Shape
			want := naiveConv(in[0], in[1], bias, c.group, c.pads, c.strides, c.dilates, o[2], o[3])
			expect(t, got[0], want)
		})
	}
}

func TestWindowRange(t *testing.T) {
	for outLen := 0; outLen < 6; outLen++ {
		for stride := 1; stride < 4; stride++ {
			for offset := -7; offset < 7; offset++ {
				for size := 0; size < 6; size++ {
					lo, hi := windowRange(outLen, stride, offset, size)
					for o := 0; o < outLen; o++ {
						in := o*stride+offset >= 0 && o*stride+offset < size
						if in != (o >= lo && o < hi) {
							t.Fatalf("windowRange(%d, %d, %d, %d) = [%d, %d), but position %d reads %d",
								outLen, stride, offset, size, lo, hi, o, o*stride+offset)
						}
					}
					if lo > hi {
						t.Fatalf("windowRange(%d, %d, %d, %d) = [%d, %d), want lo <= hi", outLen, stride, offset, size, lo, hi)
					}
				}
			}
		}
	}
}

// BenchmarkConvResNetLayer times two ResNet-50 convolutions at batch 1 and
// reports their multiply-accumulate rate.
func BenchmarkConvResNetLayer(b *testing.B) {
	cases := []struct {
		name string
		x, w []int
		pads []int
	}{
		{"3x3_64to64_56x56", []int{1, 64, 56, 56}, []int{64, 64, 3, 3}, []int{1, 1, 1, 1}},
		{"1x1_256to64_56x56", []int{1, 256, 56, 56}, []int{64, 256, 1, 1}, []int{0, 0, 0, 0}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			g := ir.NewGraph("bench")
			x := g.AddInput("x", ir.Type{DType: ir.F32, Shape: c.x})
			w := g.AddInput("w", ir.Type{DType: ir.F32, Shape: c.w})
			n, err := g.NewNode(ir.OpConv2D, []*ir.Value{x, w}, ir.Attrs{"pads": c.pads}, "")
			if err != nil {
				b.Fatal(err)
			}
			g.Outputs = []*ir.Value{n.Out}
			in := RandomInputs(g, 1)
			for b.Loop() {
				if _, err := Run(g, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n.Op.MACs(n))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
