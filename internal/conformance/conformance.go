// Package conformance loads the ONNX conformance cases of
// ../shared/onnx-tests (node tests, PyTorch-converted and -operator tests,
// light model-zoo graphs) for the frontend, interpreter and GPU tests.
package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"cnnc/frontend/onnx"
	"cnnc/ir"
	"cnnc/ir/interp"
)

// The ONNX suite's tolerances.
const (
	Rtol = 1e-3
	Atol = 1e-7
)

// ExpectedUnsupported lists, in one place, the cases that use ops, modes
// or dtypes outside what cnnc handles, with the reason. Each must fail to
// import with onnx.ErrUnsupported.
var ExpectedUnsupported = map[string]string{
	"node/test_max_float64":                                        "float64 tensors",
	"node/test_min_float64":                                        "float64 tensors",
	"node/test_gather_0":                                           "Gather of non-contiguous indices from a run-time tensor",
	"pytorch-operator/test_operator_convtranspose":                 "ConvTranspose",
	"pytorch-operator/test_operator_add_broadcast":                 "float64 tensors",
	"pytorch-operator/test_operator_add_size1_broadcast":           "float64 tensors",
	"pytorch-operator/test_operator_add_size1_right_broadcast":     "float64 tensors",
	"pytorch-operator/test_operator_add_size1_singleton_broadcast": "float64 tensors",
	"pytorch-operator/test_operator_addconstant":                   "float64 tensors",
	"pytorch-operator/test_operator_pad":                           "reflection padding",
}

// Case is one conformance case.
type Case struct {
	Name    string // e.g. node/test_relu
	Model   string
	Inputs  []string // input_N.pb files in order
	Outputs []string // expected output_N.pb files in order
	Light   bool     // a light model: input is arange(n)/n
}

// Dir finds the conformance data: $CNNC_ONNX_TESTS, else ../shared/onnx-tests
// above the given repository-relative depth.
func Dir(up int) string {
	if d := os.Getenv("CNNC_ONNX_TESTS"); d != "" {
		return d
	}
	parts := []string{}
	for range up {
		parts = append(parts, "..")
	}
	return filepath.Join(append(parts, "..", "shared", "onnx-tests")...)
}

// Cases lists every case under dir.
func Cases(dir string) ([]Case, error) {
	if _, err := os.Stat(dir); err != nil {
		abs, _ := filepath.Abs(dir)
		return nil, fmt.Errorf("conformance data not found: expected the ONNX test cases at %s (../shared/onnx-tests beside the checkout, or $CNNC_ONNX_TESTS)", abs)
	}
	var cases []Case
	for _, suite := range []string{"node", "pytorch-converted", "pytorch-operator"} {
		dirs, err := os.ReadDir(filepath.Join(dir, suite))
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			cd := filepath.Join(dir, suite, d.Name())
			c := Case{Name: suite + "/" + d.Name(), Model: filepath.Join(cd, "model.onnx")}
			c.Inputs, _ = filepath.Glob(filepath.Join(cd, "test_data_set_0", "input_*.pb"))
			c.Outputs, _ = filepath.Glob(filepath.Join(cd, "test_data_set_0", "output_*.pb"))
			sortByIndex(c.Inputs)
			sortByIndex(c.Outputs)
			cases = append(cases, c)
		}
	}
	lights, _ := filepath.Glob(filepath.Join(dir, "light", "light_*.onnx"))
	for _, m := range lights {
		base := strings.TrimSuffix(m, ".onnx")
		cases = append(cases, Case{Name: "light/" + filepath.Base(base), Model: m,
			Outputs: []string{base + "_output_0.pb"}, Light: true})
	}
	return cases, nil
}

// sortByIndex orders input_2.pb before input_10.pb.
func sortByIndex(paths []string) {
	num := func(p string) int {
		var n int
		b := filepath.Base(p)
		fmt.Sscanf(strings.TrimSuffix(b[strings.LastIndex(b, "_")+1:], ".pb"), "%d", &n)
		return n
	}
	sort.Slice(paths, func(i, j int) bool { return num(paths[i]) < num(paths[j]) })
}

// Loaded is an imported case with its inputs and expected outputs.
type Loaded struct {
	Graph  *ir.Graph
	Inputs []*interp.Tensor // one per graph input
	Want   []*interp.Tensor
}

// Load imports a case. Inputs that carry shapes, axes or bounds are bound
// as constants, the way a user freezes them for a static-shape compiler.
func Load(c Case) (*Loaded, error) {
	raw, err := os.ReadFile(c.Model)
	if err != nil {
		return nil, err
	}
	m, err := onnx.DecodeModel(raw)
	if err != nil {
		return nil, err
	}
	// Input files follow the graph inputs that are not initializers; an
	// unreadable one (a dtype cnnc rejects) matters only if it is used.
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	byName := map[string]*ir.Tensor{}
	var readErr error
	i := 0
	for _, vi := range m.Graph.Inputs {
		if inits[vi.Name] {
			continue
		}
		if i < len(c.Inputs) {
			t, _, err := onnx.ReadTensorFile(c.Inputs[i])
			if err != nil && readErr == nil {
				readErr = err
			}
			byName[vi.Name] = t
		}
		i++
	}
	opt := onnx.Options{Constants: map[string]*ir.Tensor{}}
	var g *ir.Graph
	for {
		g, err = onnx.Import(raw, c.Model, filepath.Dir(c.Model), opt)
		var nc *onnx.NeedConstantError
		if errors.As(err, &nc) && byName[nc.Input] != nil && opt.Constants[nc.Input] == nil {
			opt.Constants[nc.Input] = byName[nc.Input]
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	l := &Loaded{Graph: g}
	for k, v := range g.Inputs {
		if c.Light {
			l.Inputs = append(l.Inputs, Arange(v.Type.Shape))
			continue
		}
		x := byName[g.ExternalInputName(k)]
		if x == nil {
			if readErr != nil {
				return nil, readErr
			}
			return nil, fmt.Errorf("no test data for input %q", g.ExternalInputName(k))
		}
		l.Inputs = append(l.Inputs, interp.FromIR(x))
	}
	for _, p := range c.Outputs {
		want, _, err := onnx.ReadTensorFile(p)
		if err != nil {
			return nil, err
		}
		l.Want = append(l.Want, interp.FromIR(want))
	}
	return l, nil
}

// Arange is the light models' input: arange(n)/n in row-major order.
func Arange(shape []int) *interp.Tensor {
	x := interp.New(shape)
	n := len(x.Data)
	for i := range x.Data {
		x.Data[i] = float32(float64(i) / float64(n))
	}
	return x
}
