package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"cnnc/frontend/onnx"
	"cnnc/internal/tensorfile"
	"cnnc/ir"
	"cnnc/ir/interp"
)

// inputList collects repeated --input flags: "path" for the first graph
// input or "name=path".
type inputList []string

func (l *inputList) String() string     { return strings.Join(*l, ",") }
func (l *inputList) Set(v string) error { *l = append(*l, v); return nil }

func runEval(args []string, stdout io.Writer) error {
	fs := newFlags("eval", "eval model.onnx [--input x.npy|x.pb | --input name=path ...] [--seed S] [-o y.npy] [--batch N]", stdout)
	var lf loadFlags
	lf.register(fs)
	var inputs inputList
	fs.Var(&inputs, "input", "an input tensor, `path` (.npy or ONNX TensorProto .pb) for the first input or name=path; repeatable. Inputs not given are random")
	seed := fs.Uint64("seed", 1, "seed of the random inputs (uniform in [-1, 1))")
	out := fs.String("o", "", "write the outputs as .npy: `path` for one output, path_<name>.npy for each of several")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return badInputf("want one model file, got %d arguments; see 'cnnc eval --help'", len(pos))
	}
	given, err := readInputs(inputs)
	if err != nil {
		return err
	}
	g, bound, err := loadBinding(pos[0], lf, given)
	if err != nil {
		return err
	}
	xs, err := lineUpInputs(graphSpecs(g, false), given, bound, *seed)
	if err != nil {
		return err
	}
	ys, err := interp.Run(g, xs)
	if err != nil {
		return err
	}
	for i, y := range ys {
		fmt.Fprintf(stdout, "%s: %s\n", g.ExternalOutputName(i), summarize(y))
	}
	if *out != "" {
		return writeTensors(*out, graphSpecs(g, true), ys)
	}
	return nil
}

// readInputs reads the --input files, keyed by graph input name ("" for
// the first input).
func readInputs(specs []string) (map[string]*ir.Tensor, error) {
	given := map[string]*ir.Tensor{}
	for _, s := range specs {
		name, path := "", s
		if i := strings.IndexByte(s, '='); i > 0 {
			name, path = s[:i], s[i+1:]
		}
		if _, dup := given[name]; dup {
			return nil, badInputf("--input %s: input %q given twice", s, name)
		}
		t, err := tensorfile.Read(path)
		if err != nil {
			return nil, badInputf("--input %s: %v", s, err)
		}
		given[name] = t
	}
	return given, nil
}

// loadBinding loads a model, binding given inputs that the model needs at
// compile time (shapes, axes, bounds) as constants; it returns the names
// it bound.
func loadBinding(path string, lf loadFlags, given map[string]*ir.Tensor) (*ir.Graph, map[string]*ir.Tensor, error) {
	if lf.batch < 0 {
		return nil, nil, badInputf("--batch %d: want a positive batch", lf.batch)
	}
	opt := onnx.Options{Batch: lf.batch, Constants: map[string]*ir.Tensor{}}
	for {
		g, err := onnx.Load(path, opt)
		var nc *onnx.NeedConstantError
		if errors.As(err, &nc) && given[nc.Input] != nil && opt.Constants[nc.Input] == nil {
			opt.Constants[nc.Input] = given[nc.Input]
			continue
		}
		return g, opt.Constants, badInput(err)
	}
}

// tensorSpec is a model input or output as the CLI names it.
type tensorSpec struct {
	name  string
	shape []int
}

func graphSpecs(g *ir.Graph, outputs bool) []tensorSpec {
	vals, name := g.Inputs, g.ExternalInputName
	if outputs {
		vals, name = g.Outputs, g.ExternalOutputName
	}
	specs := make([]tensorSpec, len(vals))
	for i, v := range vals {
		specs[i] = tensorSpec{name(i), v.Type.Shape}
	}
	return specs
}

// lineUpInputs matches the given tensors with a model's inputs (a nameless
// one is the first input), checking shapes, and fills the rest with random
// data (seed+i for input i), so eval and run see the same inputs. Names
// bound as constants at import are accepted too.
func lineUpInputs(specs []tensorSpec, given, bound map[string]*ir.Tensor, seed uint64) ([]*interp.Tensor, error) {
	known := map[string]bool{"": true}
	xs := make([]*interp.Tensor, len(specs))
	for i, in := range specs {
		known[in.name] = true
		t := given[in.name]
		if t == nil && i == 0 {
			t = given[""]
		}
		if t == nil {
			xs[i] = interp.Random(in.shape, seed+uint64(i))
			continue
		}
		if !ir.ShapeEqual(t.Shape, in.shape) {
			return nil, badInputf("input %q has shape %v, the model wants %v", in.name, t.Shape, in.shape)
		}
		if !t.DType.IsFloat() {
			return nil, badInputf("input %q has dtype %s, the model wants f32", in.name, t.DType)
		}
		xs[i] = interp.FromIR(t)
	}
	for name := range given {
		if !known[name] && bound[name] == nil {
			return nil, badInputf("--input %s: the model has no input of that name", name)
		}
	}
	return xs, nil
}

func summarize(t *interp.Tensor) string {
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	for _, v := range t.Data {
		f := float64(v)
		lo, hi, sum = math.Min(lo, f), math.Max(hi, f), sum+f
	}
	head := t.Data[:min(len(t.Data), 5)]
	mean := 0.0
	if len(t.Data) > 0 {
		mean = sum / float64(len(t.Data))
	}
	return fmt.Sprintf("f32%v min %.6g max %.6g mean %.6g first %v", t.Shape, lo, hi, mean, head)
}

// writeTensors writes outputs as .npy: path for one, path_<name>.npy for
// each of several.
func writeTensors(path string, specs []tensorSpec, ys []*interp.Tensor) error {
	if len(ys) == 1 {
		return tensorfile.WriteFileAtomic(path, tensorfile.EncodeNPY(ys[0].Shape, ys[0].Data))
	}
	base := strings.TrimSuffix(path, filepath.Ext(path))
	for i, y := range ys {
		p := fmt.Sprintf("%s_%s.npy", base, sanitizeFileName(specs[i].name))
		if err := tensorfile.WriteFileAtomic(p, tensorfile.EncodeNPY(y.Shape, y.Data)); err != nil {
			return err
		}
	}
	return nil
}

func sanitizeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if ir.IsNameChar(byte(r)) && r < 128 {
			return r
		}
		return '_'
	}, s)
}
