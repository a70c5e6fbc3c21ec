package codegen

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"cnnc/artifact"
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
	// Hopper targets sm_90a: the tensor-core core may use wgmma, whose
	// PTX (ISA 8.0, arch-specific sm_90a) runs on sm_90 cards only, and
	// the bulk tensor copy engine (ISA 8.0). The backend compiles for
	// sm_90 (LLVM 16, the GPU machine's clang, knows neither sm_90a nor
	// PTX 8.x; these instructions are inline assembly it does not read)
	// and the PTX header is raised after: to 8.0, or 8.3 where a kernel
	// takes tensor maps (the ISA its GPU tests ran; see raiseHopper).
	Hopper bool
}

// Targets are the architectures `--target` accepts. sm_80 PTX is
// JIT-compiled by the driver for newer cards.
var Targets = map[string]Target{
	"sm_80":  {"sm_80", 80, "ptx70", false},
	"sm_86":  {"sm_86", 86, "ptx71", false},
	"sm_89":  {"sm_89", 89, "ptx78", false},
	"sm_90":  {"sm_90", 90, "ptx78", false},
	"sm_90a": {"sm_90", 90, "ptx78", true},
}

// TargetFor is the target for a card of compute capability major.minor:
// the nearest at or below the card; on Hopper (9.0) sm_90a, whose wgmma
// core runs the warpgroup tiles (bench/RESULTS.md, sixth session).
func TargetFor(major, minor int) string {
	sm := 10*major + minor
	switch {
	case sm == 90:
		return "sm_90a"
	case sm > 90:
		return "sm_90"
	case sm >= 89:
		return "sm_89"
	case sm >= 86:
		return "sm_86"
	}
	return "sm_80"
}

// raiseHopper rewrites the PTX header of an sm_90 compile for sm_90a and
// PTX ISA 8.0 (Target.Hopper).
func raiseHopper(ptx []byte) []byte {
	s := versionLine.ReplaceAllString(string(ptx), ".version 8.0")
	return []byte(strings.Replace(s, ".target sm_90\n", ".target sm_90a\n", 1))
}

var versionLine = regexp.MustCompile(`(?m)^\.version \d+\.\d+`)

// declareClusters gives each kernel of a launch with ClusterBlocks its
// cluster shape, 1 x 1 x ClusterBlocks, as the PTX directive
// .reqnctapercluster before the kernel's body (neither llc-19 nor the GPU
// machine's clang-16 writes it): launched the plain way, its blocks then
// form clusters.
func declareClusters(ptx []byte, launches []artifact.Launch) ([]byte, error) {
	s := string(ptx)
	for _, l := range launches {
		if l.ClusterBlocks == 0 {
			continue
		}
		entry := strings.Index(s, ".entry "+l.Kernel+"(")
		if entry < 0 {
			return nil, fmt.Errorf("kernel %s is not in the PTX", l.Kernel)
		}
		body := strings.Index(s[entry:], "\n{")
		if body < 0 {
			return nil, fmt.Errorf("kernel %s has no body in the PTX", l.Kernel)
		}
		at := entry + body
		s = s[:at] + fmt.Sprintf("\n.reqnctapercluster 1, 1, %d", l.ClusterBlocks) + s[at:]
	}
	return []byte(s), nil
}

// mapsByValue makes each tensor map parameter of the launches' kernels a
// 128-byte parameter (64-byte aligned) that the launch passes by value,
// as CUDA's __grid_constant__ maps are: the copy engine then reads the
// map from the kernel's parameters, which need no fence and no fetch
// from global memory. The backend declares the parameter a pointer (the
// IR takes its address as an i64); its loads become the parameter's
// generic address.
func mapsByValue(ptx []byte, launches []artifact.Launch) ([]byte, error) {
	s := string(ptx)
	for _, l := range launches {
		kernels := []string{l.Kernel}
		if l.OneTile != nil {
			kernels = append(kernels, l.OneTile.Kernel) // the same parameters
		}
		for _, kernel := range kernels {
			var err error
			if s, err = kernelMapsByValue(s, kernel, l.Args); err != nil {
				return nil, err
			}
		}
	}
	if strings.Contains(s, "cvta.param.u64") {
		// The copy engine's kernels were tested (and measured) as PTX
		// ISA 8.3; the others stay at 8.0, which 12.0-12.2 drivers JIT.
		s = versionLine.ReplaceAllString(s, ".version 8.3")
	}
	return []byte(s), nil
}

// kernelMapsByValue is mapsByValue's rewrite of one kernel of the PTX
// s, which takes args.
func kernelMapsByValue(s, kernel string, args []artifact.Arg) (string, error) {
	entry := strings.Index(s, ".entry "+kernel+"(")
	if entry < 0 {
		if slices.ContainsFunc(args, func(a artifact.Arg) bool { return a.Map != nil }) {
			return "", fmt.Errorf("kernel %s is not in the PTX", kernel)
		}
		return s, nil
	}
	end := len(s)
	if next := strings.Index(s[entry+1:], ".entry "); next >= 0 {
		end = entry + 1 + next
	}
	body := s[entry:end]
	for j, a := range args {
		if a.Map == nil {
			continue
		}
		param := fmt.Sprintf("%s_param_%d", kernel, j)
		decl := regexp.MustCompile(`\.param \.u64 ` + regexp.QuoteMeta(param) + `\b`)
		if len(decl.FindAllStringIndex(body, -1)) != 1 {
			return "", fmt.Errorf("kernel %s: tensor map parameter %d is not a .u64 parameter in the PTX", kernel, j)
		}
		body = decl.ReplaceAllLiteralString(body, ".param .align 64 .b8 "+param+"["+fmt.Sprint(artifact.TensorMapBytes)+"]")
		load := regexp.MustCompile(`ld\.param\.[bu]64\s+(%rd\d+), \[` + regexp.QuoteMeta(param) + `\];`)
		if !load.MatchString(body) {
			return "", fmt.Errorf("kernel %s: tensor map parameter %d is never loaded as a 64-bit value in the PTX", kernel, j)
		}
		body = load.ReplaceAllString(body, "mov.u64 \t$1, "+param+";\n\tcvta.param.u64 \t$1, $1;")
		// Any other use would read the map's bytes as its address.
		uses := regexp.MustCompile(regexp.QuoteMeta(param)+`\b`).FindAllStringIndex(body, -1)
		if movs := strings.Count(body, ", "+param+";"); len(uses) != 1+movs {
			return "", fmt.Errorf("kernel %s: tensor map parameter %d has uses the PTX rewrite does not know", kernel, j)
		}
	}
	return s[:entry] + body + s[end:], nil
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
