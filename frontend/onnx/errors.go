package onnx

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported marks an op, attribute value or dtype that cnnc does not
// handle; test with errors.Is.
var ErrUnsupported = errors.New("unsupported")

// Error is an import failure with the place it happened.
type Error struct {
	File  string // the model file
	Node  string // the ONNX node name, or "" for a graph-level problem
	Op    string // the ONNX op type
	Opset int64  // the default-domain opset of the model
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Node != "" || e.Op != "" {
		fmt.Fprintf(&b, ": node %q (%s, opset %d)", e.Node, e.Op, e.Opset)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// unsupported makes an error wrapping ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// NeedConstantError says that an input cnnc needs at compile time (a shape,
// axes, pads or clip bounds) is a graph input. Binding that input with
// Options.Constants resolves it.
type NeedConstantError struct {
	Input string // the ONNX value name
	What  string // what the node uses it for
}

func (e *NeedConstantError) Error() string {
	return fmt.Sprintf("%s: %s (%q) is computed at run time; cnnc needs it constant", ErrUnsupported, e.What, e.Input)
}

func (e *NeedConstantError) Unwrap() error { return ErrUnsupported }
