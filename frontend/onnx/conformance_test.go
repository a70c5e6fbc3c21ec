package onnx_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"cnnc/frontend/onnx"
	"cnnc/internal/conformance"
	"cnnc/ir/interp"
)

// TestConformance runs every ONNX conformance case through the frontend
// and the interpreter and compares with the expected outputs at the ONNX
// tolerances. Cases outside what cnnc handles must fail with the
// unsupported error and be listed in conformance.ExpectedUnsupported.
func TestConformance(t *testing.T) {
	cases, err := conformance.Cases(conformance.Dir(2))
	if err != nil {
		if os.Getenv("CNNC_SKIP_CONFORMANCE") == "1" {
			t.Skip("CNNC_SKIP_CONFORMANCE=1: conformance data skipped")
		}
		t.Fatalf("%v; set CNNC_SKIP_CONFORMANCE=1 to skip", err)
	}
	var passed, failed, unsup int
	for _, c := range cases {
		reason, expectUnsup := conformance.ExpectedUnsupported[c.Name]
		ok := t.Run(c.Name, func(t *testing.T) {
			err := runCase(c)
			switch {
			case err == nil && expectUnsup:
				t.Errorf("listed as unsupported (%s) but passes: remove it from ExpectedUnsupported", reason)
			case err == nil:
			case errors.Is(err, onnx.ErrUnsupported) && expectUnsup:
				unsup++
				t.Logf("unsupported as expected: %v", err)
			case errors.Is(err, onnx.ErrUnsupported):
				t.Errorf("unexpected unsupported: %v", err)
			default:
				t.Error(err)
			}
		})
		switch {
		case !ok:
			failed++
		case !expectUnsup:
			passed++
		}
	}
	for name := range conformance.ExpectedUnsupported {
		if !slices.ContainsFunc(cases, func(c conformance.Case) bool { return c.Name == name }) {
			t.Errorf("ExpectedUnsupported names %s, which is not a conformance case", name)
		}
	}
	fmt.Printf("conformance: %d passed, %d failed, %d unsupported\n", passed, failed, unsup)
}

func runCase(c conformance.Case) error {
	l, err := conformance.Load(c)
	if err != nil {
		return err
	}
	got, err := interp.Run(l.Graph, l.Inputs)
	if err != nil {
		return err
	}
	if len(got) != len(l.Want) {
		return fmt.Errorf("got %d outputs, want %d", len(got), len(l.Want))
	}
	for k := range got {
		if err := interp.Compare(got[k], l.Want[k], conformance.Rtol, conformance.Atol); err != nil {
			return fmt.Errorf("output %d (%s): %v", k, l.Graph.ExternalOutputName(k), err)
		}
	}
	return nil
}
