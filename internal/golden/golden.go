// Package golden reads and checks txtar golden files: an input section
// and a want section that `go test -update` rewrites.
package golden

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"
)

// Input returns the named section of a golden file.
func Input(t *testing.T, file, name string) string {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		if f.Name == name {
			return string(f.Data)
		}
	}
	t.Fatalf("%s has no %s section", file, name)
	return ""
}

// Check compares got with the file's want section and reports a diff
// (-want +got); with update it rewrites the section instead.
func Check(t *testing.T, file, want string, got []byte, update bool) {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	idx := -1
	for i, f := range ar.Files {
		if f.Name == want {
			idx = i
		}
	}
	if update {
		if idx < 0 {
			ar.Files = append(ar.Files, txtar.File{Name: want})
			idx = len(ar.Files) - 1
		}
		ar.Files[idx].Data = got
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if idx < 0 {
		t.Fatalf("%s has no %s section; run the test with -update", file, want)
	}
	if diff := cmp.Diff(string(ar.Files[idx].Data), string(got)); diff != "" {
		t.Errorf("%s differs from %s (-want +got):\n%s", want, file, diff)
	}
}
