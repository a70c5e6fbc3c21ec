package codegen

import (
	"fmt"
	"slices"
	"strings"
)

// The NVPTX target: triple, data layout and the backend tool's flags live
// here and nowhere else.
const (
	nvptxTriple     = "nvptx64-nvidia-cuda"
	nvptxDataLayout = "e-i64:64-i128:128-v16:16-v32:32-n16:32:64"
)

// Target is a GPU architecture cnnc compiles for.
type Target struct {
	Name string // sm_80
	SM   int    // 80
	PTX  string // the PTX ISA version the backend is asked for, e.g. ptx70
}

// Targets are the architectures `--target` accepts. sm_80 PTX is
// JIT-compiled by the driver for newer cards.
var Targets = map[string]Target{
	"sm_80": {"sm_80", 80, "ptx70"},
	"sm_86": {"sm_86", 86, "ptx71"},
	"sm_89": {"sm_89", 89, "ptx78"},
	"sm_90": {"sm_90", 90, "ptx78"},
}

// DefaultTarget is the target when none is given.
const DefaultTarget = "sm_80"

// LookupTarget finds a target by name.
func LookupTarget(name string) (Target, error) {
	t, ok := Targets[name]
	if !ok {
		names := make([]string, 0, len(Targets))
		for n := range Targets {
			names = append(names, n)
		}
		return Target{}, fmt.Errorf("unknown target %q, want one of %s", name, strings.Join(slices.Sorted(slices.Values(names)), ", "))
	}
	return t, nil
}

// llcArgs are the flags of llc for the target, reading in.ll and writing out.
func llcArgs(t Target, in, out string) []string {
	return []string{"-march=nvptx64", "-mcpu=" + t.Name, "-mattr=+" + t.PTX, "-O3", "-o", out, in}
}

// clangArgs are the flags of clang used as the NVPTX backend.
func clangArgs(t Target, in, out string) []string {
	return []string{"--target=" + nvptxTriple, "-march=" + t.Name, "-Xclang", "-target-feature", "-Xclang", "+" + t.PTX,
		"-O3", "-S", "-Wno-override-module", "-x", "ir", in, "-o", out}
}
