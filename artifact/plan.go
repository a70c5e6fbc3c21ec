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
const FormatVersion = 1

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
)

// Arg is one kernel argument: a pointer to Buffer + Offset.
type Arg struct {
	Buffer string `json:"buffer"`
	Offset int64  `json:"offset"`
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
	ClusterBlocks int      `json:"cluster_blocks,omitempty"`
	Args          []Arg    `json:"args"`
	FLOPs         int64    `json:"flops"`
	Bytes         int64    `json:"min_bytes"`
	PredictedNs   float64  `json:"predicted_ns,omitempty"`
	Layers        []string `json:"layers"` // the ONNX nodes it computes
	Ops           []string `json:"ops"`    // the IR ops it computes
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
			size := p.Arena
			switch a.Buffer {
			case BufArena:
			case BufWeights:
				size = p.Weights.Bytes
			default:
				return fmt.Errorf("launch %d (%s): argument %d points into unknown buffer %q", i, l.Kernel, j, a.Buffer)
			}
			if a.Offset < 0 || a.Offset > size {
				return fmt.Errorf("launch %d (%s): argument %d offset %d outside %s of %d bytes", i, l.Kernel, j, a.Offset, a.Buffer, size)
			}
		}
	}
	return nil
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
