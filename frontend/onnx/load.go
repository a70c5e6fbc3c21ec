// Package onnx reads ONNX models into cnnc's IR: a hand-written protobuf
// decoder, one importer per ONNX op (opset-aware), folding of the
// Shape/Gather/Concat chains that only compute shapes, and static shapes
// throughout.
package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"cnnc/ir"
)

// Opsets of the default domain that cnnc reads.
const (
	MinOpset = 1
	MaxOpset = 25
)

// Options control the import.
type Options struct {
	// Batch, when positive, sets dimension 0 of every graph input.
	Batch int
	// InputShapes overrides the shapes of named graph inputs.
	InputShapes map[string][]int
	// Constants binds named graph inputs to values known at compile time,
	// as for inputs that carry shapes, axes or bounds (see NeedConstantError).
	Constants map[string]*ir.Tensor
}

// Load reads and imports the model at path. External-data tensors are read
// from the model's folder.
func Load(path string, opt Options) (*ir.Graph, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{File: path, Err: fmt.Errorf("cannot read the model: %v", err)}
	}
	return Import(data, path, filepath.Dir(path), opt)
}

// Import imports a serialized model. file names it in errors; dir is where
// external data lives ("" if the model has none).
func Import(data []byte, file, dir string, opt Options) (*ir.Graph, error) {
	m, err := DecodeModel(data)
	if err != nil {
		return nil, &Error{File: file, Err: fmt.Errorf("not a valid ONNX model: %v", err)}
	}
	if m.Graph == nil {
		return nil, &Error{File: file, Err: errors.New("not a valid ONNX model: no graph")}
	}
	im := &importer{
		file: file, opt: opt, g: ir.NewGraph(sanitize(m.Graph.Name, "model")),
		env: map[string]*operand{}, blobs: map[string]bool{},
		ext: &externalData{dir: dir, files: map[string]*os.File{}},
	}
	defer im.ext.close()
	if err := im.readOpsets(m); err != nil {
		return nil, &Error{File: file, Err: err}
	}
	if err := im.importGraph(m.Graph); err != nil {
		var ie *Error
		if errors.As(err, &ie) {
			ie.File = file
			if ie.Op != "" {
				ie.Opset = im.opset
			}
			return nil, ie
		}
		return nil, &Error{File: file, Err: err}
	}
	if err := ir.Verify(im.g); err != nil {
		return nil, &Error{File: file, Err: fmt.Errorf("imported graph fails verification: %v", err)}
	}
	return im.g, nil
}

// operand is what an ONNX value name stands for during import: an IR value,
// a known constant (materialized as a const node on first use), or both.
type operand struct {
	v    *ir.Value
	c    *ir.Tensor
	blob string
}

type importer struct {
	file  string
	opset int64
	opt   Options
	g     *ir.Graph
	env   map[string]*operand
	blobs map[string]bool
	ext   *externalData

	// batchFrom -> batchTo records a --batch override of a fixed batch, so
	// that reshapes with the old batch baked in can follow it.
	batchFrom, batchTo int
}

func (im *importer) readOpsets(m *Model) error {
	for _, o := range m.Opsets {
		switch o.Domain {
		case "", "ai.onnx":
			im.opset = o.Version
		}
	}
	if im.opset == 0 {
		if len(m.Opsets) == 0 {
			im.opset = MinOpset // models before opset_import existed
		} else {
			return unsupported("the model imports no default-domain (ai.onnx) opset")
		}
	}
	if im.opset < MinOpset || im.opset > MaxOpset {
		return unsupported("default-domain opset %d (cnnc reads opsets %d to %d)", im.opset, MinOpset, MaxOpset)
	}
	return nil
}

func (im *importer) importGraph(gp *Graph) error {
	if gp.HasSparseInitializers {
		return unsupported("sparse initializers")
	}
	for _, t := range gp.Initializers {
		c, err := convertTensor(t, im.ext)
		if err != nil {
			return fmt.Errorf("initializer: %w", err)
		}
		im.env[t.Name] = &operand{c: c, blob: t.Name}
	}
	if err := im.importInputs(gp); err != nil {
		return err
	}
	order, err := topoSort(gp)
	if err != nil {
		return err
	}
	used := usedNames(gp)
	for _, n := range order {
		if err := im.importNode(n, used); err != nil {
			return &Error{File: im.file, Node: n.Name, Op: n.OpType, Opset: im.opset, Err: err}
		}
	}
	return im.importOutputs(gp)
}

func (im *importer) importInputs(gp *Graph) error {
	for _, vi := range gp.Inputs {
		if _, isInit := im.env[vi.Name]; isInit {
			continue // old exporters list initializers among the inputs
		}
		if t, ok := im.opt.Constants[vi.Name]; ok {
			im.env[vi.Name] = &operand{c: t}
			continue
		}
		if !vi.HasTensorType {
			return unsupported("graph input %q is not a tensor", vi.Name)
		}
		dt, err := dtypeOf(DataType(vi.ElemType))
		if err != nil {
			return fmt.Errorf("graph input %q: %w", vi.Name, err)
		}
		shape, err := im.inputShape(vi)
		if err != nil {
			return fmt.Errorf("graph input %q: %w", vi.Name, err)
		}
		v := im.g.AddInput(sanitize(vi.Name, "input"), ir.Type{DType: dt, Shape: shape})
		im.g.InputNames = append(im.g.InputNames, vi.Name)
		im.env[vi.Name] = &operand{v: v}
	}
	return nil
}

// inputShape resolves a graph input's shape: fixed dims as declared,
// dimension 0 from --batch, other symbolic dims 1, overrides by name.
func (im *importer) inputShape(vi *ValueInfo) ([]int, error) {
	if s, ok := im.opt.InputShapes[vi.Name]; ok {
		return s, nil
	}
	if !vi.HasShape {
		return nil, unsupported("no declared shape; pass its shape explicitly")
	}
	shape := make([]int, len(vi.Dims))
	for i, d := range vi.Dims {
		switch {
		case d.HasValue && (d.Value < 0 || d.Value > ir.MaxElements):
			return nil, fmt.Errorf("dimension %d is %d, want 0..2^40", i, d.Value)
		case d.HasValue:
			shape[i] = int(d.Value)
		default:
			shape[i] = 1
		}
	}
	if b := im.opt.Batch; b > 0 && len(shape) > 0 {
		if shape[0] != b && len(vi.Dims) > 0 && vi.Dims[0].HasValue && vi.Dims[0].Value > 0 {
			im.batchFrom, im.batchTo = shape[0], b
		}
		shape[0] = b
	}
	if ir.ShapeElems(shape) < 0 {
		return nil, fmt.Errorf("dimensions %v overflow (more than 2^40 elements)", shape)
	}
	return shape, nil
}

func (im *importer) importOutputs(gp *Graph) error {
	if len(gp.Outputs) == 0 {
		return errors.New("the graph has no outputs")
	}
	for _, vi := range gp.Outputs {
		o, ok := im.env[vi.Name]
		if !ok {
			return fmt.Errorf("graph output %q is not produced by any node, initializer or input", vi.Name)
		}
		v := im.materialize(o, vi.Name)
		if err := checkDeclared(vi, v.Type, im.opt.Batch > 0); err != nil {
			return fmt.Errorf("graph output %q: %w", vi.Name, err)
		}
		if v.Def != nil && v.Def.Op != ir.OpConst && isNumeric(v.Name) {
			im.g.Rename(v, sanitize(vi.Name, "output"))
		}
		im.g.Outputs = append(im.g.Outputs, v)
		im.g.OutputNames = append(im.g.OutputNames, vi.Name)
	}
	return nil
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// checkDeclared compares a declared output type with the inferred one.
// Symbolic dims match anything; so does dim 0 when --batch overrode it.
func checkDeclared(vi *ValueInfo, t ir.Type, batchSet bool) error {
	if !vi.HasTensorType || !vi.HasShape {
		return nil
	}
	if len(vi.Dims) != len(t.Shape) {
		return fmt.Errorf("inconsistent shapes: declared rank %d, inferred %v", len(vi.Dims), t.Shape)
	}
	for i, d := range vi.Dims {
		if !d.HasValue || d.Value <= 0 || (i == 0 && batchSet) {
			continue
		}
		if int(d.Value) != t.Shape[i] {
			return fmt.Errorf("inconsistent shapes: declared dimension %d is %d, inferred shape %v", i, d.Value, t.Shape)
		}
	}
	return nil
}

// materialize returns the IR value of an operand, adding a const node for
// a constant on first use.
func (im *importer) materialize(o *operand, origin string) *ir.Value {
	if o.v == nil {
		blob := ""
		if o.blob != "" || o.c.Elems() > 8 || o.c.DType == ir.F16 {
			base := o.blob
			if base == "" {
				base = "const"
			}
			blob = sanitize(base, "const")
			for i := 1; im.blobs[blob]; i++ {
				blob = fmt.Sprintf("%s_%d", sanitize(base, "const"), i)
			}
			im.blobs[blob] = true
		}
		o.v = im.g.NewConst(o.c, blob, origin).Out
	}
	return o.v
}

// topoSort orders nodes so that each follows the producers of its inputs,
// keeping file order where it is already valid. It reports cycles and
// inputs that nothing produces.
func topoSort(gp *Graph) ([]*Node, error) {
	producer := map[string]int{}
	for i, n := range gp.Nodes {
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if j, dup := producer[o]; dup {
				return nil, fmt.Errorf("value %q is produced by two nodes (%q and %q)", o, gp.Nodes[j].Name, n.Name)
			}
			producer[o] = i
		}
	}
	known := map[string]bool{"": true}
	for _, t := range gp.Initializers {
		known[t.Name] = true
	}
	for _, vi := range gp.Inputs {
		known[vi.Name] = true
	}
	state := make([]uint8, len(gp.Nodes)) // 0 new, 1 visiting, 2 done
	var order []*Node
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("the graph has a cycle through node %q (%s)", gp.Nodes[i].Name, gp.Nodes[i].OpType)
		case 2:
			return nil
		}
		state[i] = 1
		for _, in := range gp.Nodes[i].Inputs {
			if known[in] {
				continue
			}
			j, ok := producer[in]
			if !ok {
				n := gp.Nodes[i]
				return &Error{Node: n.Name, Op: n.OpType, Err: fmt.Errorf("input %q is not produced by any node, initializer or graph input", in)}
			}
			if err := visit(j); err != nil {
				return err
			}
		}
		state[i] = 2
		order = append(order, gp.Nodes[i])
		return nil
	}
	for i := range gp.Nodes {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func usedNames(gp *Graph) map[string]bool {
	used := map[string]bool{}
	for _, n := range gp.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, o := range gp.Outputs {
		used[o.Name] = true
	}
	return used
}

// sanitize maps an ONNX name to the IR's name characters.
func sanitize(name, fallback string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if ir.IsNameChar(c) {
			b.WriteByte(c)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_.")
	if s == "" {
		return fallback
	}
	return s
}
