package onnxbuild

import (
	"runtime"
	"testing"

	"cnnc/frontend/onnx"
)

// BenchmarkImportResNet50 times onnx.Import of the 102 MB ResNet-50 and
// reports the bytes it allocates per import as a multiple of the model's
// size ("x-model-size"). The decoder aliases raw_data rather than copying
// it, so the ratio should stay well under 2.
func BenchmarkImportResNet50(b *testing.B) {
	data := resNet50().Bytes()
	b.ReportAllocs()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		if _, err := onnx.Import(data, "resnet50.onnx", "", onnx.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	perOp := float64(after.TotalAlloc-before.TotalAlloc) / float64(b.N)
	b.ReportMetric(perOp/float64(len(data)), "x-model-size")
}
