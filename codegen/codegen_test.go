package codegen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"

	"cnnc/frontend/onnx"
	"cnnc/frontend/onnx/onnxbuild"
	"cnnc/ir"
	"cnnc/ir/interp"
)

var update = flag.Bool("update", false, "rewrite the want.ll sections of testdata/*.txtar")

// backendForTest returns the NVPTX backend; tests fail without one unless
// CNNC_SKIP_LLC=1 (CI installs llvm-19).
func backendForTest(t *testing.T) Backend {
	t.Helper()
	b, err := FindBackend()
	if err != nil {
		if os.Getenv("CNNC_SKIP_LLC") == "1" {
			t.Skipf("CNNC_SKIP_LLC=1: %v", err)
		}
		t.Fatalf("%v (set CNNC_SKIP_LLC=1 to skip)", err)
	}
	return b
}

// fillConsts gives parsed consts without data deterministic random data.
func fillConsts(g *ir.Graph) {
	for i, n := range g.Nodes {
		if n.Op == ir.OpConst && n.Const == nil {
			r := interp.Random(n.Out.Type.Shape, uint64(i+1))
			n.Const = ir.NewF32(r.Shape, r.Data)
		}
	}
}

// TestGoldenLLVM lowers each testdata graph and compares the LLVM module
// with its golden (go test ./codegen -update rewrites them); every golden
// is also compiled by the NVPTX backend, one .entry per launch.
func TestGoldenLLVM(t *testing.T) {
	be := backendForTest(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if len(files) == 0 {
		t.Fatal("no golden files in testdata")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var input string
			wantIdx := -1
			for i, f := range ar.Files {
				switch f.Name {
				case "input.ir":
					input = string(f.Data)
				case "want.ll":
					wantIdx = i
				}
			}
			g, err := ir.Parse(input)
			if err != nil {
				t.Fatal(err)
			}
			fillConsts(g)
			res, err := Lower(g, Options{Model: filepath.Base(file)})
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want.ll"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = res.LLVM
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if wantIdx < 0 {
				t.Fatal("no want.ll section; run go test ./codegen -update")
			} else if diff := cmp.Diff(string(ar.Files[wantIdx].Data), string(res.LLVM)); diff != "" {
				t.Errorf("LLVM IR differs from the golden (-want +got):\n%s", diff)
			}
			ptx, err := be.Compile(res.LLVM, Targets[DefaultTarget])
			if err != nil {
				t.Fatalf("the backend rejects the module: %v", err)
			}
			if got, want := bytes.Count(ptx, []byte(".entry ")), len(res.Plan.Launches); got != want {
				t.Errorf("PTX has %d entries, the plan %d launches", got, want)
			}
		})
	}
}

// entryBodies splits PTX into kernel name -> body.
func entryBodies(ptx string) map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`\.entry (\w+)\(`)
	locs := re.FindAllStringSubmatchIndex(ptx, -1)
	for i, l := range locs {
		end := len(ptx)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[ptx[l[2]:l[3]]] = ptx[l[0]:end]
	}
	return out
}

func compileExample(t *testing.T) *Result {
	t.Helper()
	g, err := onnx.Import(onnxbuild.TinyResNet(1).Bytes(), "tiny.onnx", "", onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compile(g, Options{Model: "tiny.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPTXProperties checks the compiled example: one kernel per launch,
// named kNNN_what, plan arguments inside their buffers, and no local
// memory (register spills) in the convolution kernels at the default tile.
func TestPTXProperties(t *testing.T) {
	backendForTest(t)
	res := compileExample(t)
	bodies := entryBodies(string(res.PTX))
	if len(bodies) != len(res.Plan.Launches) {
		t.Errorf("PTX has %d kernels, plan %d launches", len(bodies), len(res.Plan.Launches))
	}
	name := regexp.MustCompile(`^k\d{3}_[a-z0-9_]+$`)
	convs := 0
	for _, l := range res.Plan.Launches {
		body, ok := bodies[l.Kernel]
		if !ok {
			t.Errorf("launch %s has no kernel in the PTX", l.Kernel)
			continue
		}
		if !name.MatchString(l.Kernel) {
			t.Errorf("kernel name %q does not read kNNN_what", l.Kernel)
		}
		if strings.Contains(l.Kernel, "conv") {
			convs++
			if strings.Contains(body, ".local") {
				t.Errorf("%s uses local memory (spills)", l.Kernel)
			}
			if !strings.Contains(body, "fma.rn.f32") || !strings.Contains(body, "ld.shared") && !strings.Contains(l.Kernel, "dwconv") {
				t.Errorf("%s lacks the FMA/shared-memory core", l.Kernel)
			}
		}
	}
	if convs != 8 {
		t.Errorf("%d convolution kernels, want the example's 8", convs)
	}
	if err := res.Plan.Validate(); err != nil {
		t.Error(err)
	}
}

// TestDeterministic compiles the example twice and compares every output.
func TestDeterministic(t *testing.T) {
	backendForTest(t)
	a, b := compileExample(t), compileExample(t)
	pa, _ := a.Plan.Encode()
	pb, _ := b.Plan.Encode()
	for _, c := range []struct {
		what string
		x, y []byte
	}{{"LLVM", a.LLVM, b.LLVM}, {"PTX", a.PTX, b.PTX}, {"plan", pa, pb}, {"weights", a.Weights, b.Weights}} {
		if !bytes.Equal(c.x, c.y) {
			t.Errorf("%s differs between two compiles of the same model", c.what)
		}
	}
}

func TestLowerRejects(t *testing.T) {
	g, err := ir.Parse(`graph g(%x: f32[2]) -> (%s) {
  %s = const i64[2] [1, 2]
}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lower(g, Options{}); err == nil || !strings.Contains(err.Error(), "i64") {
		t.Errorf("Lower of an i64 output = %v, want an unsupported-dtype error", err)
	}
	if _, err := Lower(g, Options{Target: "sm_50"}); err == nil || !strings.Contains(err.Error(), "unknown target") {
		t.Errorf("Lower with sm_50 = %v, want unknown target", err)
	}
}
