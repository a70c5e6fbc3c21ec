package onnx

import (
	"os"
	"testing"
)

// FuzzDecodeModel checks that DecodeModel never panics and that a successful
// decode always has a graph. It is seeded with every model.onnx of the ONNX
// test suites, when present, and with handmade models.
func FuzzDecodeModel(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte(testModel(true)))
	f.Add([]byte(testModel(false)))
	f.Add([]byte(nested(3)))
	f.Add([]byte(cat(testModel(true), junk...)))
	for _, p := range modelFiles(f, testsDir()) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeModel(b)
		if err != nil {
			if m != nil {
				t.Fatalf("model returned along with error %v", err)
			}
			return
		}
		if m == nil || m.Graph == nil {
			t.Fatalf("successful decode without a graph: %+v", m)
		}
	})
}

// FuzzDecodeTensor checks that DecodeTensor never panics.
func FuzzDecodeTensor(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte(enc{}.ints(1, true, 2, 3).floats(4, true, 1, 2).str(8, "t").bytes(9, []byte{1, 2})))
	f.Add([]byte(enc{}.ints(1, false, 2).ints(5, false, -1).doubles(10, false, 1).ints(11, true, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeTensor(b)
		if (x == nil) == (err == nil) {
			t.Fatalf("DecodeTensor = %v, %v: want exactly one non-nil", x, err)
		}
	})
}
