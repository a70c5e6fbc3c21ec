package main

import (
	"fmt"
	"io"
)

func runDemo(args []string, stdout io.Writer) error {
	return fmt.Errorf("not wired yet")
}
