package codegen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Backend is an LLVM tool with the NVPTX target that turns LLVM IR into PTX.
type Backend struct {
	Path    string
	Clang   bool // clang used as the backend rather than llc
	Version int  // LLVM major version
}

// ErrNoBackend says that no LLVM tool with the NVPTX target was found.
var ErrNoBackend = errors.New("no LLVM backend with the NVPTX target found")

var (
	backendOnce sync.Once
	backend     Backend
	backendErr  error
)

// FindBackend locates the NVPTX backend once: $CNNC_LLC, then llc-19,
// llc-18, llc-17 and llc on PATH (or in /usr/lib/llvm-N/bin), then clang 16
// or newer. A tool must report the nvptx64 target.
func FindBackend() (Backend, error) {
	backendOnce.Do(func() { backend, backendErr = findBackend() })
	return backend, backendErr
}

func findBackend() (Backend, error) {
	if p := os.Getenv("CNNC_LLC"); p != "" {
		b, err := probe(p)
		if err != nil {
			return Backend{}, fmt.Errorf("$CNNC_LLC=%s: %v", p, err)
		}
		return b, nil
	}
	var tried []string
	var candidates []string
	for _, name := range []string{"llc-19", "llc-18", "llc-17", "llc"} {
		candidates = append(candidates, name)
	}
	for _, v := range []int{19, 18, 17} {
		candidates = append(candidates, filepath.Join(fmt.Sprintf("/usr/lib/llvm-%d/bin", v), "llc"))
	}
	for _, v := range []int{19, 18, 17, 16} {
		candidates = append(candidates, fmt.Sprintf("clang-%d", v), filepath.Join(fmt.Sprintf("/usr/lib/llvm-%d/bin", v), "clang"))
	}
	candidates = append(candidates, "clang")
	for _, c := range candidates {
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		b, err := probe(path)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		return b, nil
	}
	if len(tried) > 0 {
		return Backend{}, fmt.Errorf("%w; rejected: %v; install llvm-19 (apt-get install llvm-19) or set $CNNC_LLC", ErrNoBackend, tried)
	}
	return Backend{}, fmt.Errorf("%w: looked for $CNNC_LLC, llc-19..17, llc and clang-16 or newer; install llvm-19 (apt-get install llvm-19) or set $CNNC_LLC", ErrNoBackend)
}

var versionRE = regexp.MustCompile(`(?:LLVM|clang) version (\d+)`)

// probe runs tool --version and checks its version and NVPTX support.
func probe(path string) (Backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return Backend{}, fmt.Errorf("%s --version: %v", path, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return Backend{}, fmt.Errorf("cannot read the LLVM version from %s --version", path)
	}
	v, _ := strconv.Atoi(string(m[1]))
	b := Backend{Path: path, Version: v, Clang: bytes.Contains(out, []byte("clang version"))}
	if b.Clang {
		if v < 16 {
			return Backend{}, fmt.Errorf("clang %d is older than 16", v)
		}
		return b, nil
	}
	if v < 17 {
		return Backend{}, fmt.Errorf("llc %d is older than 17", v)
	}
	if !bytes.Contains(out, []byte("nvptx64")) {
		return Backend{}, errors.New("llc lacks the nvptx64 target")
	}
	return b, nil
}

// Compile turns LLVM IR text into PTX for the target.
func (b Backend) Compile(llvmIR []byte, t Target) ([]byte, error) {
	dir, err := os.MkdirTemp("", "cnnc-llc")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "model.ll"), filepath.Join(dir, "model.ptx")
	if err := os.WriteFile(in, llvmIR, 0o644); err != nil {
		return nil, err
	}
	args := llcArgs(t, in, out)
	if b.Clang {
		args = clangArgs(t, in, out)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(b.Path, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, &BackendError{Tool: b.Path, Stderr: stderr.String(), Err: err}
	}
	ptx, err := os.ReadFile(out)
	if err == nil && t.Hopper {
		ptx = raiseHopper(ptx)
	}
	return ptx, err
}

// BackendError is a failure of the NVPTX backend tool, with its stderr.
type BackendError struct {
	Tool   string
	Stderr string
	Err    error
}

func (e *BackendError) Error() string {
	return fmt.Sprintf("%s failed (%v): %s", e.Tool, e.Err, bytes.TrimSpace([]byte(e.Stderr)))
}
