package cudnn

import (
	"errors"
	"os"
	"strings"
	"testing"

	"cnnc/ir"
	"cnnc/ir/interp"
	"cnnc/runtime/cuda"
)

func TestDims4(t *testing.T) {
	for _, c := range []struct {
		shape []int
		want  [4]int32
	}{{[]int{7}, [4]int32{1, 7, 1, 1}}, {[]int{2, 7}, [4]int32{2, 7, 1, 1}}, {[]int{2, 3, 4, 5}, [4]int32{2, 3, 4, 5}}} {
		if got, err := dims4(c.shape); err != nil || got != c.want {
			t.Errorf("dims4(%v) = %v, %v; want %v", c.shape, got, err, c.want)
		}
	}
	if _, err := dims4([]int{1, 2, 3, 4, 5}); err == nil {
		t.Error("dims4 of a 5-D shape succeeded")
	}
}

// TestLoadSaysWhereItLooked: without cuDNN the error is ErrNoLibrary and
// names CNNC_CUDNN's file among the places tried.
func TestLoadSaysWhereItLooked(t *testing.T) {
	if _, err := Load(); err == nil {
		t.Skip("cuDNN is installed here")
	}
	if !errors.Is(loadErr, ErrNoLibrary) {
		t.Fatalf("Load: %v, want ErrNoLibrary", loadErr)
	}
	os.Setenv("CNNC_CUDNN", "/nowhere/libcudnn.so.9")
	defer os.Unsetenv("CNNC_CUDNN")
	if _, err := load(); !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "/nowhere/libcudnn.so.9") {
		t.Errorf("load: %v, want ErrNoLibrary naming /nowhere/libcudnn.so.9", err)
	}
}

// blockIR has every op the baseline maps to cuDNN: convolution with bias
// (dense and depthwise), ReLU, ReLU6, residual add, squeeze-excite
// multiply, max pool, global average pool, the classifier gemm.
const blockIR = `graph block(%x: f32[2,8,12,12]) -> (%y) {
  %w = const f32[8,8,3,3] @w
  %b = const f32[8] @b
  %1 = conv2d %x, %w, %b {dilations=[1,1], group=1, pads=[1,1,1,1], strides=[1,1]} : f32[2,8,12,12]
  %2 = relu %1 : f32[2,8,12,12]
  %dw = const f32[8,1,3,3] @dw
  %3 = conv2d %2, %dw {dilations=[1,1], group=8, pads=[1,1,1,1], strides=[1,1]} : f32[2,8,12,12]
  %4 = clip %3 {max=6, min=0} : f32[2,8,12,12]
  %5 = add %4, %x : f32[2,8,12,12]
  %6 = global_avgpool %5 : f32[2,8,1,1]
  %7 = sigmoid %6 : f32[2,8,1,1]
  %8 = mul %5, %7 : f32[2,8,12,12]
  %9 = maxpool2d %8 {ceil_mode=0, dilations=[1,1], kernel=[2,2], pads=[0,0,0,0], strides=[2,2]} : f32[2,8,6,6]
  %10 = global_avgpool %9 : f32[2,8,1,1]
  %11 = reshape %10 {shape=[2,8]} : f32[2,8]
  %fc = const f32[5,8] @fc
  %fb = const f32[5] @fb
  %y = gemm %11, %fc, %fb {alpha=1, beta=1, trans_a=0, trans_b=1} : f32[2,5]
}
`

// TestGPUNetMatchesInterpreter runs the block with cuDNN in fp32 and fp16
// and compares with the interpreter on random data.
func TestGPUNetMatchesInterpreter(t *testing.T) {
	g, err := ir.Parse(blockIR)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range g.Nodes {
		if n.Op == ir.OpConst {
			r := interp.Random(n.Out.Type.Shape, uint64(i+1))
			n.Const = ir.NewF32(r.Shape, r.Data)
		}
	}
	in := interp.RandomInputs(g, 1)
	want, err := interp.Run(g, in)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := cuda.Open(0)
	if errors.Is(err, cuda.ErrNoDriver) {
		t.Skipf("no GPU: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := Load(); err != nil {
		t.Skipf("no cuDNN: %v", err)
	}
	for _, c := range []struct {
		precision string
		tol       float64
	}{{"fp32", 1e-5}, {"fp16", 1e-2}} { // fp32 within 1e-5: no TF32 rounding
		net, err := Build(dev, g, c.precision)
		if err != nil {
			t.Fatalf("%s: %v", c.precision, err)
		}
		outs, err := net.Run([][]float32{in[0].Data})
		if err != nil {
			t.Fatalf("%s: %v", c.precision, err)
		}
		got := &interp.Tensor{Shape: want[0].Shape, Data: outs[0]}
		if e := interp.RelL2(got, want[0]); e > c.tol {
			t.Errorf("%s: relative L2 error %.2e against the interpreter, want under %g", c.precision, e, c.tol)
		}
		for _, graph := range []bool{false, true} {
			if ms, err := net.Time(2, 5, graph); err != nil || ms <= 0 {
				t.Errorf("%s: Time(graph %v) = %v, %v", c.precision, graph, ms, err)
			}
		}
		if err := net.Close(); err != nil {
			t.Errorf("%s: Close: %v", c.precision, err)
		}
	}
}
