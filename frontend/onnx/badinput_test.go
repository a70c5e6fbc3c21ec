package onnx_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cnnc/frontend/onnx"
	"cnnc/frontend/onnx/onnxbuild"
)

// reluModel is x -> Relu -> y, the smallest valid model, for cases that
// break one thing.
func reluModel() *onnxbuild.Builder {
	b := onnxbuild.New("bad", 17)
	x := b.Input("x", onnx.DTFloat, 1, 3, 4, 4)
	y := b.Node("Relu", []string{x})
	b.Rename(y, "y")
	b.Output("y", onnx.DTFloat, 1, 3, 4, 4)
	return b
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := reluModel().Bytes()

	cycle := reluModel()
	m := cycle.Model()
	m.Graph.Nodes = append(m.Graph.Nodes,
		&onnx.Node{Name: "a", OpType: "Relu", Inputs: []string{"b"}, Outputs: []string{"a_out"}},
		&onnx.Node{Name: "b", OpType: "Relu", Inputs: []string{"a_out"}, Outputs: []string{"b"}})
	m.Graph.Outputs = append(m.Graph.Outputs, &onnx.ValueInfo{Name: "b"})

	dangling := onnxbuild.New("bad", 17)
	dangling.Input("x", onnx.DTFloat, 1, 4)
	dangling.Output(dangling.Node("Add", []string{"x", "bias_that_is_missing"}), onnx.DTFloat)

	missingInit := onnxbuild.New("bad", 17)
	mx := missingInit.Input("x", onnx.DTFloat, 1, 3, 8, 8)
	missingInit.Output(missingInit.Node("Conv", []string{mx, "conv1.weight"}), onnx.DTFloat)

	unsupOp := onnxbuild.New("bad", 17)
	unsupOp.Output(unsupOp.Node("NonMaxSuppression", []string{unsupOp.Input("x", onnx.DTFloat, 1, 4)}), onnx.DTFloat)

	reflect := onnxbuild.New("bad", 17)
	rx := reflect.Input("x", onnx.DTFloat, 1, 3, 4, 4)
	pads := reflect.InitializerInt64("pads", []int64{8}, []int64{0, 0, 1, 1, 0, 0, 1, 1})
	reflect.Output(reflect.Node("Pad", []string{rx, pads}, onnxbuild.String("mode", "reflect")), onnx.DTFloat)

	badAutoPad := onnxbuild.New("bad", 17)
	bx := badAutoPad.Input("x", onnx.DTFloat, 1, 3, 8, 8)
	bw := badAutoPad.Random("w", []int64{4, 3, 3, 3}, 1, 1)
	badAutoPad.Output(badAutoPad.Node("Conv", []string{bx, bw}, onnxbuild.String("auto_pad", "SIDEWAYS")), onnx.DTFloat)

	unknownAttr := onnxbuild.New("bad", 17)
	unknownAttr.Output(unknownAttr.Node("Relu", []string{unknownAttr.Input("x", onnx.DTFloat, 2)}, onnxbuild.Int("speed", 3)), onnx.DTFloat)

	shapes := onnxbuild.New("bad", 17)
	sa := shapes.Input("a", onnx.DTFloat, 1, 3)
	sb := shapes.Input("b", onnx.DTFloat, 1, 4)
	shapes.Output(shapes.Node("Add", []string{sa, sb}), onnx.DTFloat)

	declared := reluModel()
	declared.Model().Graph.Outputs[0].Dims[3].Value = 5

	overflow := onnxbuild.New("bad", 17)
	overflow.Output(overflow.Node("Relu", []string{overflow.Input("x", onnx.DTFloat, 1<<20, 1<<20, 1<<20)}), onnx.DTFloat)

	escape := onnxbuild.New("bad", 17)
	ex := escape.Input("x", onnx.DTFloat, 1, 4)
	w := escape.Initializer("w", []int64{1, 4}, []float32{1, 2, 3, 4})
	escape.Output(escape.Node("Add", []string{ex, w}), onnx.DTFloat)
	for _, init := range escape.Model().Graph.Initializers {
		init.Raw = nil
		init.DataLocation = 1
		init.External = []onnx.KeyValue{{Key: "location", Value: "../../etc/passwd"}, {Key: "offset", Value: "0"}, {Key: "length", Value: "16"}}
	}

	cases := []struct {
		name  string
		path  string
		unsup bool     // must wrap ErrUnsupported
		node  string   // the node the error must name ("" for none)
		want  []string // substrings of the one-line message
	}{
		{"missing file", filepath.Join(dir, "nope.onnx"), false, "", []string{"nope.onnx", "cannot read the model"}},
		{"truncated", write("trunc.onnx", good[:len(good)/2]), false, "", []string{"trunc.onnx", "not a valid ONNX model"}},
		{"not onnx", write("png.onnx", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")), false, "", []string{"png.onnx", "not a valid ONNX model"}},
		{"cycle", write("cycle.onnx", cycle.Bytes()), false, "", []string{"cycle.onnx", "cycle through node"}},
		{"dangling input", write("dangling.onnx", dangling.Bytes()), false, "node_Add_0", []string{"Add, opset 17", `"bias_that_is_missing" is not produced`}},
		{"missing initializer", write("noinit.onnx", missingInit.Bytes()), false, "node_Conv_0", []string{"Conv, opset 17", `"conv1.weight" is not produced`}},
		{"unsupported op", write("nms.onnx", unsupOp.Bytes()), true, "node_NonMaxSuppression_0", []string{"unsupported: op NonMaxSuppression"}},
		{"unsupported pad mode", write("reflect.onnx", reflect.Bytes()), true, "node_Pad_0", []string{`Pad mode "reflect"`}},
		{"unsupported auto_pad", write("autopad.onnx", badAutoPad.Bytes()), true, "node_Conv_0", []string{`auto_pad "SIDEWAYS"`}},
		{"unknown attribute", write("attr.onnx", unknownAttr.Bytes()), true, "node_Relu_0", []string{"attribute speed"}},
		{"inconsistent shapes", write("shapes.onnx", shapes.Bytes()), false, "node_Add_0", []string{"[1 3] and [1 4] do not broadcast"}},
		{"declared output shape", write("declared.onnx", declared.Bytes()), false, "", []string{`graph output "y"`, "inconsistent shapes"}},
		{"overflowing dims", write("overflow.onnx", overflow.Bytes()), false, "", []string{`graph input "x"`, "overflow"}},
		{"external data escapes", write("escape.onnx", escape.Bytes()), false, "", []string{`"../../etc/passwd" escapes the model's folder`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := onnx.Load(c.path, onnx.Options{})
			if err == nil {
				t.Fatalf("Load succeeded:\n%s", g)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if got := errors.Is(err, onnx.ErrUnsupported); got != c.unsup {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v (%v)", got, c.unsup, err)
			}
			var ie *onnx.Error
			if !errors.As(err, &ie) {
				t.Fatalf("error is %T, want *onnx.Error", err)
			}
			if ie.File != c.path {
				t.Errorf("error names file %q, want %q", ie.File, c.path)
			}
			if ie.Node != c.node {
				t.Errorf("error names node %q, want %q", ie.Node, c.node)
			}
		})
	}
}
