// Package artifact defines what `cnnc compile` writes and the runtime
// reads: model.ptx, model.plan.json (this package's Plan) and
// model.weights (packed little-endian blobs, each aligned to 256 bytes).
package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// FormatVersion is the plan format this package writes and reads.
const FormatVersion = 2

// Alignment of every buffer in the arena and every blob in the weights file.
const Alignment = 256

// Plan is model.plan.json: everything the runtime needs besides the PTX
// and the weights.
type Plan struct {
	Format    int         `json:"format"`
	Model     string      `json:"model"`     // the source model's file name
	Target    string      `json:"target"`    // e.g. sm_80
	Precision string      `json:"precision"` // fp32 or fp16
	Batch     int         `json:"batch"`
	OptLevel  int         `json:"opt_level"`
	PTX       string      `json:"ptx"` // file name beside the plan
	Inputs    []TensorRef `json:"inputs"`
	Outputs   []TensorRef `json:"outputs"`
	Arena     int64       `json:"arena_bytes"` // device scratch for every activation
	Weights   WeightsFile `json:"weights"`
	Launches  []Launch    `json:"launches"`
	FLOPs     int64       `json:"model_flops"`
}

// TensorRef is a graph input or output living in the arena.
type TensorRef struct {
	Name   string `json:"name"`
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Offset int64  `json:"offset"` // in the arena
	Bytes  int64  `json:"bytes"`
}

// WeightsFile names the weights file and pins its content.
type WeightsFile struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Buffer kinds a kernel argument points into.
const (
	BufArena   = "arena"
	BufWeights = "weights"
	// BufTensorMaps marks a tensor map argument: the kernel takes the
	// 128-byte CUtensorMap that the runtime encodes from the argument's
	// Map, by value.
	BufTensorMaps = "tensor_maps"
)

// Arg is one kernel argument: a pointer to Buffer + Offset, or, with
// Buffer BufTensorMaps, the tensor map Map describes (Offset 0).
type Arg struct {
	Buffer string     `json:"buffer"`
	Offset int64      `json:"offset"`
	Map    *TensorMap `json:"tensor_map,omitempty"`
}

// TensorMapBytes is the size of an encoded tensor map (CUtensorMap).
const TensorMapBytes = 128

// TensorMap describes a Hopper tensor map (the bulk tensor copy engine's
// view of a tensor) over fp16 elements at Buffer + Offset: the runtime
// encodes it with cuTensorMapEncodeTiled, or cuTensorMapEncodeIm2col
// where Im2col is set, once the buffers are allocated. Dimensions run
// innermost first, as the driver takes them.
type TensorMap struct {
	Buffer string `json:"buffer"`
	Offset int64  `json:"offset"`
	// Dims are the extents in elements; Strides the byte strides of
	// dimensions 1 .. rank-1 (dimension 0 is contiguous).
	Dims    []int64 `json:"dims"`
	Strides []int64 `json:"strides"`
	// Box is the extent one copy moves in each dimension (tiled mode);
	// ElementStrides the traversal step in each (1 but for a strided
	// convolution's spatial dimensions).
	Box            []int `json:"box,omitempty"`
	ElementStrides []int `json:"element_strides"`
	// Swizzle is the shared-memory swizzle span in bytes: 0, 32, 64 or
	// 128.
	Swizzle int     `json:"swizzle"`
	Im2col  *Im2col `json:"im2col,omitempty"`
}

// Im2col is an im2col tensor map's pixel box over an NHWC-like tensor:
// each copy moves Channels elements of Pixels consecutive pixels, walked
// through the box [Lower, size-1+Upper] of each spatial dimension
// (innermost first) image after image.
type Im2col struct {
	Lower    []int `json:"lower"`
	Upper    []int `json:"upper"`
	Channels int   `json:"channels"`
	Pixels   int   `json:"pixels"`
}

// Launch is one kernel launch of the launch list, in order.
type Launch struct {
	Kernel      string `json:"kernel"`
	Grid        [3]int `json:"grid"`
	Block       [3]int `json:"block"`
	SharedBytes int    `json:"shared_bytes"`
	// ClusterBlocks, where not 0, groups the grid's blocks along z into
	// thread-block clusters of that many (a K split adding its partial
	// sums in distributed shared memory); the PTX declares it
	// (.reqnctapercluster), so a plain launch forms them.
	ClusterBlocks int `json:"cluster_blocks,omitempty"`
	// PersistTiles, where not 0, says the kernel is persistent over that
	// many tiles (its blocks stride through them by the grid's x): the
	// runtime launches as many blocks as fit the card at once, at most
	// PersistTiles, and Grid's x is the compiler's guess of that.
	PersistTiles int `json:"persist_tiles,omitempty"`
	// OneTile, with PersistTiles, is the same kernel one tile a block:
	// the runtime launches it instead where the persistent kernel holds
	// fewer blocks an SM (its registers) or the tiles fit one wave of it.
	OneTile     *OneTile `json:"one_tile,omitempty"`
	Args        []Arg    `json:"args"`
	FLOPs       int64    `json:"flops"`
	Bytes       int64    `json:"min_bytes"`
	PredictedNs float64  `json:"predicted_ns,omitempty"`
	Layers      []string `json:"layers"` // the ONNX nodes it computes
	Ops         []string `json:"ops"`    // the IR ops it computes
}

// OneTile is a persistent launch's one-tile-a-block kernel and grid.
type OneTile struct {
	Kernel string `json:"kernel"`
	Grid   [3]int `json:"grid"`
}

// Paths returns the plan and weights paths that belong beside ptxPath.
func Paths(ptxPath string) (plan, weights string) {
	base := strings.TrimSuffix(ptxPath, filepath.Ext(ptxPath))
	return base + ".plan.json", base + ".weights"
}

// Encode serializes the plan deterministically.
func (p *Plan) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadPlan reads and validates a plan file.
func ReadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return DecodePlan(data, path)
}

// DecodePlan parses and validates plan JSON; name is used in errors.
func DecodePlan(data []byte, name string) (*Plan, error) {
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: not a cnnc plan: %v", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: not a cnnc plan: trailing data", name)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return &p, nil
}

// Validate checks the plan's internal consistency: format, sizes, and
// every argument and tensor inside its buffer.
func (p *Plan) Validate() error {
	if p.Format != FormatVersion {
		return fmt.Errorf("plan format %d, this cnnc reads format %d; recompile the model", p.Format, FormatVersion)
	}
	if p.Arena < 0 || p.Weights.Bytes < 0 {
		return errors.New("negative arena or weights size")
	}
	if p.PTX == "" || filepath.Base(p.PTX) != p.PTX {
		return fmt.Errorf("ptx file %q must be a file name beside the plan", p.PTX)
	}
	if p.Weights.Bytes > 0 && (p.Weights.File == "" || filepath.Base(p.Weights.File) != p.Weights.File) {
		return fmt.Errorf("weights file %q must be a file name beside the plan", p.Weights.File)
	}
	for _, group := range [][]TensorRef{p.Inputs, p.Outputs} {
		for _, t := range group {
			if t.Offset < 0 || t.Bytes < 0 || t.Offset+t.Bytes > p.Arena {
				return fmt.Errorf("tensor %q at %d+%d lies outside the arena of %d bytes", t.Name, t.Offset, t.Bytes, p.Arena)
			}
		}
	}
	for i, l := range p.Launches {
		if l.Kernel == "" {
			return fmt.Errorf("launch %d has no kernel", i)
		}
		for d := 0; d < 3; d++ {
			if l.Grid[d] < 1 || l.Block[d] < 1 {
				return fmt.Errorf("launch %d (%s): grid %v and block %v must be positive", i, l.Kernel, l.Grid, l.Block)
			}
		}
		if l.Block[0]*l.Block[1]*l.Block[2] > 1024 {
			return fmt.Errorf("launch %d (%s): block %v exceeds 1024 threads", i, l.Kernel, l.Block)
		}
		for j, a := range l.Args {
			if err := p.validateArg(a); err != nil {
				return fmt.Errorf("launch %d (%s): argument %d %v", i, l.Kernel, j, err)
			}
		}
	}
	return nil
}

// bufferBytes is the size of a buffer an argument or tensor map points
// into.
func (p *Plan) bufferBytes(buffer string) (int64, error) {
	switch buffer {
	case BufArena:
		return p.Arena, nil
	case BufWeights:
		return p.Weights.Bytes, nil
	}
	return 0, fmt.Errorf("points into unknown buffer %q", buffer)
}

func (p *Plan) validateArg(a Arg) error {
	if a.Buffer == BufTensorMaps {
		if a.Map == nil || a.Offset != 0 {
			return errors.New("is a tensor map without a map (or with an offset)")
		}
		return p.validateMap(a.Map)
	}
	if a.Map != nil {
		return fmt.Errorf("points into %s but has a tensor map", a.Buffer)
	}
	size, err := p.bufferBytes(a.Buffer)
	if err != nil {
		return err
	}
	if a.Offset < 0 || a.Offset > size {
		return fmt.Errorf("offset %d outside %s of %d bytes", a.Offset, a.Buffer, size)
	}
	return nil
}

// validateMap checks what the driver's encoders require of a tensor map
// (rank, 16-byte aligned address and strides, boxes of at most 256
// elements, inner box within the swizzle span) and that every element it
// can reach lies inside its buffer.
func (p *Plan) validateMap(m *TensorMap) error {
	size, err := p.bufferBytes(m.Buffer)
	if err != nil {
		return fmt.Errorf("tensor map %v", err)
	}
	rank := len(m.Dims)
	const elem = 2 // fp16
	switch {
	case rank < 1 || rank > 5:
		return fmt.Errorf("tensor map of rank %d, want 1 to 5", rank)
	case len(m.Strides) != rank-1 || len(m.ElementStrides) != rank:
		return fmt.Errorf("tensor map of rank %d with %d strides and %d element strides", rank, len(m.Strides), len(m.ElementStrides))
	case m.Offset < 0 || m.Offset%16 != 0:
		return fmt.Errorf("tensor map at offset %d, want a multiple of 16", m.Offset)
	case m.Swizzle != 0 && m.Swizzle != 32 && m.Swizzle != 64 && m.Swizzle != 128:
		return fmt.Errorf("tensor map swizzle %d, want 0, 32, 64 or 128", m.Swizzle)
	}
	last := int64(elem)
	for d, n := range m.Dims {
		stride := int64(elem)
		if d > 0 {
			stride = m.Strides[d-1]
			if stride <= 0 || stride%16 != 0 || stride >= 1<<40 {
				return fmt.Errorf("tensor map stride %d of dimension %d, want a positive multiple of 16 below 2^40", stride, d)
			}
		}
		if n < 1 || n > 1<<32 {
			return fmt.Errorf("tensor map dimension %d of %d elements", d, n)
		}
		if s := m.ElementStrides[d]; s < 1 || s > 8 {
			return fmt.Errorf("tensor map element stride %d, want 1 to 8", s)
		}
		if n > 1 && stride > (size-last)/(n-1) {
			return fmt.Errorf("tensor map dimension %d (%d x %d bytes) reaches past %s of %d bytes", d, n, stride, m.Buffer, size)
		}
		last += (n - 1) * stride
	}
	if m.Offset > size-last {
		return fmt.Errorf("tensor map at %d reaches %d bytes, past %s of %d", m.Offset, m.Offset+last, m.Buffer, size)
	}
	inner := 0 // the inner extent of one copy, in elements
	if c := m.Im2col; c != nil {
		if rank < 3 || len(m.Box) != 0 || len(c.Lower) != rank-2 || len(c.Upper) != rank-2 {
			return fmt.Errorf("im2col tensor map of rank %d with %d box, %d lower and %d upper corner dimensions", rank, len(m.Box), len(c.Lower), len(c.Upper))
		}
		if c.Channels < 1 || c.Channels > 256 || c.Pixels < 1 || c.Pixels > 1024 {
			return fmt.Errorf("im2col tensor map of %d channels and %d pixels a copy, want 1-256 and 1-1024", c.Channels, c.Pixels)
		}
		for _, v := range append(append([]int{}, c.Lower...), c.Upper...) {
			if lim := im2colCornerLimit(rank); v < -lim || v >= lim {
				return fmt.Errorf("im2col tensor map corners %v %v, want each in [%d, %d)", c.Lower, c.Upper, -lim, lim)
			}
		}
		inner = c.Channels
	} else {
		if len(m.Box) != rank {
			return fmt.Errorf("tensor map of rank %d with a box of %d dimensions", rank, len(m.Box))
		}
		for _, b := range m.Box {
			if b < 1 || b > 256 {
				return fmt.Errorf("tensor map box %v, want 1 to 256 elements a dimension", m.Box)
			}
		}
		inner = m.Box[0]
	}
	if inner*elem%16 != 0 || (m.Swizzle > 0 && inner*elem > m.Swizzle) {
		return fmt.Errorf("tensor map inner box of %d bytes, want a multiple of 16 within the swizzle span of %d", inner*elem, m.Swizzle)
	}
	return nil
}

// im2colCornerLimit bounds an im2col map's corners: each lies in
// [-limit, limit), 16 bits shared by the spatial dimensions (the
// driver's rule: [-2^15, 2^15) for rank 3, [-128, 128) for 4, [-16, 16)
// for 5).
func im2colCornerLimit(rank int) int { return 1 << (16/(rank-2) - 1) }

// TensorMaps is how many tensor maps the launches take.
func (p *Plan) TensorMaps() int {
	n := 0
	for _, l := range p.Launches {
		for _, a := range l.Args {
			if a.Buffer == BufTensorMaps {
				n++
			}
		}
	}
	return n
}

// ReadWeights reads the weights file beside planPath and checks its size
// and SHA-256 against the plan.
func (p *Plan) ReadWeights(planPath string) ([]byte, error) {
	if p.Weights.Bytes == 0 {
		return nil, nil
	}
	path := filepath.Join(filepath.Dir(planPath), p.Weights.File)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != p.Weights.Bytes {
		return nil, fmt.Errorf("%s: %d bytes, the plan says %d", path, len(data), p.Weights.Bytes)
	}
	if sum := SHA256(data); sum != p.Weights.SHA256 {
		return nil, fmt.Errorf("%s: SHA-256 %s, the plan says %s (weights and plan are from different compiles)", path, sum, p.Weights.SHA256)
	}
	return data, nil
}

// SHA256 is the hex SHA-256 of data.
func SHA256(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Align rounds n up to the artifact alignment.
func Align(n int64) int64 { return (n + Alignment - 1) / Alignment * Alignment }
