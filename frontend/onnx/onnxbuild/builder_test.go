package onnxbuild

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"cnnc/frontend/onnx"
)

func TestBuilderModelRoundTrips(t *testing.T) {
	b := New("small", 13)
	x := b.Input("x", onnx.DTFloat, 0, 4)
	w := b.Initializer("w", []int64{4, 4}, slices.Repeat([]float32{0.5}, 16))
	shape := b.InitializerInt64("shape", []int64{2}, []int64{-1, 2})
	r := b.Random("r", []int64{4}, 0.1, 3)
	y := b.Node("MatMul", []string{x, w})
	y = b.Node("Add", []string{y, r})
	parts := b.NodeN("Split", []string{y}, 2, Int("axis", 1))
	z := b.Node("Reshape", []string{parts[1], shape})
	b.Rename(z, "z")
	b.Output("z", onnx.DTFloat)
	b.Output(parts[0], onnx.DTFloat, -1, 2)

	m := b.Model()
	if m.IRVersion != IRVersion || m.ProducerName != Producer || len(m.Opsets) != 1 || m.Opsets[0].Version != 13 {
		t.Errorf("model header: got ir_version %d, producer %q, opsets %v; want %d, %q, [{ 13}]",
			m.IRVersion, m.ProducerName, m.Opsets, IRVersion, Producer)
	}
	if got := m.Graph.Inputs[0].Dims; !cmp.Equal(got, []onnx.Dim{{Param: "N"}, {Value: 4, HasValue: true}}) {
		t.Errorf("input dims: got %+v, want N and 4", got)
	}
	if out := m.Graph.Outputs[0]; out.HasShape || out.Dims != nil {
		t.Errorf("output without dims: got HasShape %v, dims %v; want no shape", out.HasShape, out.Dims)
	}
	if got := m.Graph.Nodes[3].Inputs[0]; got != parts[1] {
		t.Errorf("Reshape reads %q, want Split's second output %q", got, parts[1])
	}
	if got := m.Graph.Nodes[3].Outputs[0]; got != "z" {
		t.Errorf("renamed output: got %q, want z", got)
	}
	raw := m.Graph.Initializers[1].Raw
	if got := int64(binary.LittleEndian.Uint64(raw)); got != -1 || len(raw) != 16 {
		t.Errorf("int64 raw_data: got first value %d in %d bytes, want -1 in 16", got, len(raw))
	}
	roundTrip(t, "built model", m)
	if _, err := onnx.Import(b.Bytes(), "small.onnx", "", onnx.Options{}); err != nil {
		t.Errorf("importing the built model: %v", err)
	}
}

func TestNodeNamesAreUnique(t *testing.T) {
	b := New("g", 17)
	seen := map[string]bool{}
	x := b.Input("x", onnx.DTFloat, 1, 8)
	for i := range 12 {
		var outs []string
		if i%3 == 0 {
			outs = b.NodeN("Split", []string{x}, 3)
		} else {
			outs = []string{b.Node("Relu", []string{x})}
		}
		for _, o := range outs {
			if seen[o] {
				t.Errorf("output name %q given twice", o)
			}
			seen[o] = true
		}
	}
	names := map[string]bool{}
	for _, n := range b.Model().Graph.Nodes {
		if n.Name == "" || names[n.Name] {
			t.Errorf("node name %q is empty or repeated", n.Name)
		}
		names[n.Name] = true
	}
	if want := 12 + 4*2; len(seen) != want {
		t.Errorf("got %d distinct output names, want %d", len(seen), want)
	}
}

func TestRandomIsDeterministicAndInRange(t *testing.T) {
	data := func(seed uint64) []float32 {
		b := New("g", 17)
		b.Random("w", []int64{100, 100}, 0.5, seed)
		raw := b.Model().Graph.Initializers[0].Raw
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out
	}
	a := data(7)
	if !slices.Equal(a, data(7)) {
		t.Errorf("the same seed gives different data")
	}
	if slices.Equal(a, data(8)) {
		t.Errorf("seeds 7 and 8 give the same data")
	}
	lo, hi, sum := a[0], a[0], 0.0
	for _, v := range a {
		lo, hi, sum = min(lo, v), max(hi, v), sum+float64(v)
	}
	// 10,000 uniform draws: the extremes lie within 1e-3 of the bounds
	// and the mean within 0.02 of 0 (over 5 standard errors).
	if lo < -0.5 || hi >= 0.5 || lo > -0.499 || hi < 0.499 {
		t.Errorf("values span [%g, %g], want [-0.5, 0.5) nearly filled", lo, hi)
	}
	if mean := sum / float64(len(a)); math.Abs(mean) > 0.02 {
		t.Errorf("mean %g, want about 0", mean)
	}
}

func TestInitializerRejectsWrongCount(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("Initializer with 5 values for dims [2 3] did not panic")
		}
	}()
	New("g", 17).Initializer("w", []int64{2, 3}, make([]float32, 5))
}

func TestWriteExternalLoadsTheSameGraph(t *testing.T) {
	const threshold = 1024
	b := TinyResNet(1)
	before := b.Bytes()
	dir := t.TempDir()
	if err := b.WriteExternal(dir, "tiny.onnx", threshold); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), before) {
		t.Errorf("WriteExternal changed the Builder's model")
	}
	checkExternal(t, b, dir, "tiny.onnx", threshold)
}

func TestWriteExternalResNet50(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB model")
	}
	dir := t.TempDir()
	b := resNet50()
	if err := b.WriteExternal(dir, "resnet50.onnx", 1024); err != nil {
		t.Fatal(err)
	}
	checkExternal(t, b, dir, "resnet50.onnx", 1024)
}

// checkExternal checks the files WriteExternal wrote from b into dir: which
// tensors moved, their offsets and lengths, and that onnx.Load imports the
// same graph as importing b's bytes.
func checkExternal(t *testing.T, b *Builder, dir, name string, threshold int) {
	t.Helper()
	path := filepath.Join(dir, name)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path + ".data")
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.DecodeModel(file)
	if err != nil {
		t.Fatal(err)
	}
	moved, offset := 0, 0
	for i, tn := range m.Graph.Initializers {
		orig := b.Model().Graph.Initializers[i]
		if len(orig.Raw) <= threshold {
			if tn.DataLocation != 0 || !bytes.Equal(tn.Raw, orig.Raw) {
				t.Errorf("%s (%d bytes) should stay inline, got location %d", tn.Name, len(orig.Raw), tn.DataLocation)
			}
			continue
		}
		moved++
		want := []onnx.KeyValue{{Key: "location", Value: name + ".data"},
			{Key: "offset", Value: strconv.Itoa(offset)}, {Key: "length", Value: strconv.Itoa(len(orig.Raw))}}
		if tn.DataLocation != 1 || tn.Raw != nil || !cmp.Equal(tn.External, want) {
			t.Errorf("%s: got location %d, %d raw bytes, external %v; want EXTERNAL, none, %v",
				tn.Name, tn.DataLocation, len(tn.Raw), tn.External, want)
		} else if !bytes.Equal(data[offset:offset+len(orig.Raw)], orig.Raw) {
			t.Errorf("%s: the data file at %d holds other bytes than the tensor", tn.Name, offset)
		}
		offset += len(orig.Raw)
	}
	if moved == 0 || moved == len(m.Graph.Initializers) || offset != len(data) {
		t.Errorf("moved %d of %d initializers, %d bytes into a %d-byte file; want some but not all, filling the file",
			moved, len(m.Graph.Initializers), offset, len(data))
	}
	loaded, err := onnx.Load(path, onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inMemory, err := onnx.Import(b.Bytes(), name, "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(inMemory.String(), loaded.String()); diff != "" {
		t.Errorf("graph loaded with external data differs from the in-memory import (-want +got):\n%s", diff)
	} else {
		for i, n := range loaded.Nodes {
			if n.Const != nil && !bytes.Equal(n.Const.Raw, inMemory.Nodes[i].Const.Raw) {
				t.Errorf("const %s: data read from the external file differs from the in-memory model's", n.Out)
			}
		}
	}
	if _, err := onnx.Import(file, name, "", onnx.Options{}); err == nil {
		t.Errorf("importing the external-data model without its folder succeeded, want an error")
	}
}

func TestWriteExternalReportsErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such", "dir")
	if err := TinyResNet(1).WriteExternal(missing, "m.onnx", 0); err == nil {
		t.Errorf("WriteExternal into a missing folder succeeded")
	}
}
