package onnxbuild

import (
	"os"
	"testing"

	"cnnc/frontend/onnx"
)

// FuzzEncodeRoundTrip checks, for any bytes the decoder accepts, that the
// model survives Encode and decoding unchanged and that Encode is then a
// fixed point. The corpus starts from the conformance models.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add(Encode(fullModel()))
	f.Add(TinyResNet(1).Bytes())
	paths, _ := findModels(conformanceDir) // none: fuzz from the seeds above
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := onnx.DecodeModel(b)
		if err != nil {
			return
		}
		roundTrip(t, "fuzzed model", m)
	})
}
