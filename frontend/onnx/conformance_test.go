package onnx_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"cnnc/frontend/onnx"
	"cnnc/ir"
	"cnnc/ir/interp"
)

// conformanceDir is ../shared/onnx-tests seen from this package.
var conformanceDir = filepath.Join("..", "..", "..", "shared", "onnx-tests")

// expectedUnsupported lists, in one place, the conformance cases that use
// ops, modes or dtypes outside what cnnc handles, with the reason. Each
// must fail to import with ErrUnsupported; one that imports is a failure
// too, so the list stays true.
var expectedUnsupported = map[string]string{
	"node/test_max_float64":                                        "float64 tensors",
	"node/test_min_float64":                                        "float64 tensors",
	"node/test_gather_0":                                           "Gather of non-contiguous indices from a run-time tensor",
	"pytorch-operator/test_operator_add_broadcast":                 "float64 tensors",
	"pytorch-operator/test_operator_add_size1_broadcast":           "float64 tensors",
	"pytorch-operator/test_operator_add_size1_right_broadcast":     "float64 tensors",
	"pytorch-operator/test_operator_add_size1_singleton_broadcast": "float64 tensors",
	"pytorch-operator/test_operator_addconstant":                   "float64 tensors",
	"pytorch-operator/test_operator_pad":                           "reflection padding",
	"pytorch-operator/test_operator_convtranspose":                 "ConvTranspose",
}

// The ONNX suite's tolerances.
const (
	conformanceRtol = 1e-3
	conformanceAtol = 1e-7
)

type conformanceCase struct {
	name    string // e.g. node/test_relu
	model   string
	inputs  []string
	outputs []string
	light   bool
}

func findConformanceCases(t *testing.T) []conformanceCase {
	if _, err := os.Stat(conformanceDir); err != nil {
		if os.Getenv("CNNC_SKIP_CONFORMANCE") == "1" {
			t.Skip("CNNC_SKIP_CONFORMANCE=1: conformance data skipped")
		}
		abs, _ := filepath.Abs(conformanceDir)
		t.Fatalf("conformance data not found: expected the ONNX test cases at %s (../shared/onnx-tests beside the checkout); set CNNC_SKIP_CONFORMANCE=1 to skip", abs)
	}
	var cases []conformanceCase
	for _, suite := range []string{"node", "pytorch-converted", "pytorch-operator"} {
		dirs, err := os.ReadDir(filepath.Join(conformanceDir, suite))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			dir := filepath.Join(conformanceDir, suite, d.Name())
			c := conformanceCase{name: suite + "/" + d.Name(), model: filepath.Join(dir, "model.onnx")}
			c.inputs, _ = filepath.Glob(filepath.Join(dir, "test_data_set_0", "input_*.pb"))
			c.outputs, _ = filepath.Glob(filepath.Join(dir, "test_data_set_0", "output_*.pb"))
			sortByIndex(c.inputs)
			sortByIndex(c.outputs)
			cases = append(cases, c)
		}
	}
	lights, _ := filepath.Glob(filepath.Join(conformanceDir, "light", "light_*.onnx"))
	for _, m := range lights {
		base := strings.TrimSuffix(m, ".onnx")
		cases = append(cases, conformanceCase{name: "light/" + filepath.Base(base), model: m,
			outputs: []string{base + "_output_0.pb"}, light: true})
	}
	return cases
}

// sortByIndex orders input_2.pb before input_10.pb.
func sortByIndex(paths []string) {
	num := func(p string) int {
		var n int
		fmt.Sscanf(strings.TrimSuffix(filepath.Base(p)[strings.LastIndex(filepath.Base(p), "_")+1:], ".pb"), "%d", &n)
		return n
	}
	sort.Slice(paths, func(i, j int) bool { return num(paths[i]) < num(paths[j]) })
}

// TestConformance runs every ONNX conformance case through the frontend
// and the interpreter and compares with the expected outputs.
func TestConformance(t *testing.T) {
	cases := findConformanceCases(t)
	var passed, failed, unsup int
	for _, c := range cases {
		ok := t.Run(c.name, func(t *testing.T) {
			reason, expectUnsup := expectedUnsupported[c.name]
			err := runConformanceCase(t, c)
			switch {
			case err == nil && expectUnsup:
				t.Errorf("listed as unsupported (%s) but passes: remove it from expectedUnsupported", reason)
			case err == nil:
			case errors.Is(err, onnx.ErrUnsupported) && expectUnsup:
				unsup++
				t.Logf("unsupported as expected: %v", err)
			case errors.Is(err, onnx.ErrUnsupported):
				t.Errorf("unexpected unsupported: %v", err)
			default:
				t.Error(err)
			}
		})
		switch _, expectUnsup := expectedUnsupported[c.name]; {
		case !ok:
			failed++
		case !expectUnsup:
			passed++
		}
	}
	for name := range expectedUnsupported {
		if !slices.ContainsFunc(cases, func(c conformanceCase) bool { return c.name == name }) {
			t.Errorf("expectedUnsupported names %s, which is not a conformance case", name)
		}
	}
	fmt.Printf("conformance: %d passed, %d failed, %d unsupported\n", passed, failed, unsup)
}

func runConformanceCase(t *testing.T, c conformanceCase) error {
	data := map[string]*ir.Tensor{}
	var order []string
	for _, p := range c.inputs {
		x, _, err := onnx.ReadTensorFile(p)
		if err != nil {
			return err
		}
		order = append(order, filepath.Base(p))
		data[filepath.Base(p)] = x
	}
	raw, err := os.ReadFile(c.model)
	if err != nil {
		return err
	}
	m, err := onnx.DecodeModel(raw)
	if err != nil {
		return err
	}
	// Input files follow the graph inputs that are not initializers.
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	byName := map[string]*ir.Tensor{}
	i := 0
	for _, vi := range m.Graph.Inputs {
		if inits[vi.Name] {
			continue
		}
		if i < len(order) {
			byName[vi.Name] = data[order[i]]
		}
		i++
	}
	// Inputs that carry shapes, axes or bounds are bound as constants, the
	// way a user freezes them for a static-shape compiler.
	opt := onnx.Options{Constants: map[string]*ir.Tensor{}}
	var g *ir.Graph
	for {
		g, err = onnx.Import(raw, c.model, filepath.Dir(c.model), opt)
		var nc *onnx.NeedConstantError
		if errors.As(err, &nc) && byName[nc.Input] != nil && opt.Constants[nc.Input] == nil {
			opt.Constants[nc.Input] = byName[nc.Input]
			continue
		}
		break
	}
	if err != nil {
		return err
	}
	var inputs []*interp.Tensor
	for k, v := range g.Inputs {
		if c.light {
			inputs = append(inputs, arange(v.Type.Shape))
			continue
		}
		x := byName[g.ExternalInputName(k)]
		if x == nil {
			return fmt.Errorf("no test data for input %q", g.ExternalInputName(k))
		}
		inputs = append(inputs, interp.FromIR(x))
	}
	got, err := interp.Run(g, inputs)
	if err != nil {
		return err
	}
	if len(got) != len(c.outputs) {
		return fmt.Errorf("got %d outputs, want %d", len(got), len(c.outputs))
	}
	for k, p := range c.outputs {
		want, _, err := onnx.ReadTensorFile(p)
		if err != nil {
			return err
		}
		if err := interp.Compare(got[k], interp.FromIR(want), conformanceRtol, conformanceAtol); err != nil {
			return fmt.Errorf("output %d (%s): %v", k, g.ExternalOutputName(k), err)
		}
	}
	return nil
}

// arange is the light models' input: arange(n)/n in row-major order.
func arange(shape []int) *interp.Tensor {
	x := interp.New(shape)
	n := len(x.Data)
	for i := range x.Data {
		x.Data[i] = float32(float64(i) / float64(n))
	}
	return x
}
