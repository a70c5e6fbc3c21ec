// Command genexample writes the CLI's embedded example model,
// onnxbuild.TinyResNet(1), to the path given as its only argument:
//
//	//go:generate go run cnnc/frontend/onnx/onnxbuild/internal/genexample tinyresnet.onnx
package main

import (
	"fmt"
	"os"

	"cnnc/frontend/onnx/onnxbuild"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genexample OUTPUT.onnx")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], onnxbuild.TinyResNet(1).Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "genexample:", err)
		os.Exit(1)
	}
}
