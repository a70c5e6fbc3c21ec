package main

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"cnnc/codegen"
	"cnnc/frontend/onnx/onnxbuild"
)

// writeResNet50 writes a ResNet-50 with real-size random weights (about
// 100 MB) and returns its path and size.
func writeResNet50(b *testing.B) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "resnet50.onnx")
	data := onnxbuild.ResNet50(1, 1).Bytes()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return path, int64(len(data))
}

// BenchmarkInspectResNet50 times `cnnc inspect` on ResNet-50 end to end
// (read, decode, import, report) and reports the bytes it allocates as a
// multiple of the model file's size (the target is under 2 s and 2x).
func BenchmarkInspectResNet50(b *testing.B) {
	path, size := writeResNet50(b)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		if err := runInspect([]string{path}, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(size), "x-model-size")
}

// BenchmarkCompileResNet50 times `cnnc compile` of ResNet-50 with real-size
// weights, the NVPTX backend included (the target is under 10 s).
func BenchmarkCompileResNet50(b *testing.B) {
	if _, err := codegen.FindBackend(); err != nil {
		b.Skip(err)
	}
	path, _ := writeResNet50(b)
	out := filepath.Join(b.TempDir(), "resnet50.ptx")
	b.ResetTimer()
	for range b.N {
		if err := runCompile([]string{path, "-o", out}, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
