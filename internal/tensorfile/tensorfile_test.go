package tensorfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNPYRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{2, 3, 4}, {5}, {}, {1, 0, 3}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.25 - 3
		}
		path := filepath.Join(t.TempDir(), "x.npy")
		if err := WriteFileAtomic(path, EncodeNPY(shape, data)); err != nil {
			t.Fatal(err)
		}
		got, err := ReadNPY(path)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if diff := cmp.Diff(shape, got.Shape); diff != "" && n > 0 {
			t.Errorf("shape (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(data, got.Float32s()); diff != "" && n > 0 {
			t.Errorf("data (-want +got):\n%s", diff)
		}
	}
}

func TestReadNPYErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.npy")
	os.WriteFile(bad, []byte("not numpy at all"), 0o644)
	if _, err := Read(bad); err == nil {
		t.Error("Read of a non-NPY file succeeded")
	}
	trunc := filepath.Join(dir, "trunc.npy")
	full := EncodeNPY([]int{4, 4}, make([]float32, 16))
	os.WriteFile(trunc, full[:len(full)-5], 0o644)
	if _, err := Read(trunc); err == nil {
		t.Error("Read of a truncated NPY file succeeded")
	}
	if _, err := Read(filepath.Join(dir, "missing.npy")); err == nil {
		t.Error("Read of a missing file succeeded")
	}
}
