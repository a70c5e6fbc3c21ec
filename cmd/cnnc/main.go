// Command cnnc is an ahead-of-time CNN compiler for NVIDIA GPUs: it reads
// ONNX models, reports their layers, evaluates them on the CPU and (in
// later subcommands) compiles them to PTX and runs them on the GPU.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"cnnc/bench"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"demo", "the main job on the embedded example model: inspect, evaluate, compile; on a GPU run and bench", runDemo},
		{"inspect", "print a model's IR and per-layer FLOPs, bytes and parameters", runInspect},
		{"eval", "run a model on the CPU reference interpreter", runEval},
		{"run", "run a compiled model on the GPU and time it", runRun},
		{"compile", "compile a model to PTX, a launch plan and packed weights", runCompile},
		{"bench", "compile -O0 and -O2, check, time and report utilization on the GPU", runBench},
		{"tune", "measure a model's GEMM kernels on every candidate tile on the GPU and keep the fastest", runTune},
		{"survey", "the utilization survey: bench many models and batches, tables and plots", runSurvey},
		{"nas", "the search-space study: predict candidates' latency, measure a subset, compare", runNAS},
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// defaultPrecision is --precision's default in compile, bench, tune and
// survey: fp16 storage on the tensor cores, what users deploy CNNs in
// (issue 5: its outputs stay within 1e-2 relative L2 of the fp32
// interpreter on every model the bench runs).
const defaultPrecision = "fp16"

// Exit codes: 2 for bad input or usage, 1 for internal or device failures.
const (
	exitFailure  = 1
	exitBadInput = 2
)

// inputError marks an error caused by the user's input or flags.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func badInput(err error) error {
	if err == nil {
		return nil
	}
	return inputError{err}
}

func badInputf(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "cnnc: internal error: %v\n", r)
			code = exitFailure
		}
	}()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitBadInput
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		}
		fmt.Fprintf(stderr, "cnnc %s: %s\n", c.name, bench.OneLine(err))
		var ie inputError
		if errors.As(err, &ie) {
			return exitBadInput
		}
		return exitFailure
	}
	fmt.Fprintf(stderr, "cnnc: unknown command %q; run 'cnnc --help' for the list\n", args[0])
	return exitBadInput
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cnnc: an ahead-of-time CNN compiler for NVIDIA GPUs")
	fmt.Fprintln(w, "\nusage: cnnc <command> [flags] [arguments]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'cnnc <command> --help' for a command's flags.")
}

// flagSet is a subcommand's flags: errors come back as one-line values
// and --help prints the synopsis and flags.
type flagSet struct {
	*flag.FlagSet
	synopsis string
	w        io.Writer
}

func newFlags(name, synopsis string, w io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, synopsis: synopsis, w: w}
}

// parse parses flags that may come before or after the positional
// arguments, as users type them, and returns the positional ones.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(fs.w, "usage: cnnc %s\n\nflags:\n", fs.synopsis)
				fs.SetOutput(fs.w)
				fs.PrintDefaults()
				return nil, err
			}
			return nil, badInput(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
