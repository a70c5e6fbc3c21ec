package interp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"cnnc/ir"
)

// Random returns a tensor of shape filled with values uniform in [-1, 1),
// drawn from a PCG generator seeded with seed: the same seed always gives
// the same data. No element is zero, so an unwritten output element or a
// dropped term cannot hide behind a zero input.
func Random(shape []int, seed uint64) *Tensor {
	t := New(shape)
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i := range t.Data {
		v := float32(0)
		for v == 0 {
			v = 2*r.Float32() - 1 // exact: Float32 is a multiple of 2^-24
		}
		t.Data[i] = v
	}
	return t
}

// RandomInputs makes one Random tensor per input of g, with seeds seed,
// seed+1, ... in input order.
func RandomInputs(g *ir.Graph, seed uint64) []*Tensor {
	out := make([]*Tensor, len(g.Inputs))
	for i, v := range g.Inputs {
		out[i] = Random(v.Type.Shape, seed+uint64(i))
	}
	return out
}

// Compare checks that got and want have the same shape and that every
// element satisfies |got - want| <= atol + rtol*|want|, where NaN equals
// NaN and an infinity equals the same-signed infinity. The error counts
// the mismatches and names the worst one (the largest excess over its
// tolerance) by index, with its got and want.
func Compare(got, want *Tensor, rtol, atol float64) error {
	switch {
	case got == nil || want == nil:
		return fmt.Errorf("compare: nil tensor (got is nil: %v, want is nil: %v)", got == nil, want == nil)
	case !ir.ShapeEqual(got.Shape, want.Shape):
		return fmt.Errorf("compare: got shape %s, want %s", formatShape(got.Shape), formatShape(want.Shape))
	case len(got.Data) != len(want.Data):
		return fmt.Errorf("compare: got %d values, want %d", len(got.Data), len(want.Data))
	}
	bad, worst, worstExcess := 0, -1, math.Inf(-1)
	for i := range want.Data {
		g, w := float64(got.Data[i]), float64(want.Data[i])
		var excess float64
		switch {
		case math.IsNaN(g) && math.IsNaN(w), math.IsInf(w, 0) && g == w:
			continue
		case math.IsNaN(g) || math.IsNaN(w) || math.IsInf(g, 0) || math.IsInf(w, 0):
			excess = math.Inf(1)
		default:
			excess = math.Abs(g-w) - (atol + rtol*math.Abs(w))
			if excess <= 0 {
				continue
			}
		}
		bad++
		if excess > worstExcess {
			worst, worstExcess = i, excess
		}
	}
	if bad == 0 {
		return nil
	}
	g, w := got.Data[worst], want.Data[worst]
	return fmt.Errorf("compare: %d of %d elements differ (rtol %g, atol %g); worst at %s: got %g, want %g (|diff| %g, allowed %g)",
		bad, len(want.Data), rtol, atol, formatIndex(worst, want.Shape), g, w,
		math.Abs(float64(g)-float64(w)), atol+rtol*math.Abs(float64(w)))
}

// RelL2 is ||got - want||_2 / ||want||_2, summed in float64. It is 0 for
// two zero tensors, +Inf for a non-zero got against a zero want or for
// tensors of different sizes, and NaN if either holds a NaN.
func RelL2(got, want *Tensor) float64 {
	if got == nil || want == nil || len(got.Data) != len(want.Data) {
		return math.Inf(1)
	}
	var diff, norm float64
	for i, w := range want.Data {
		d := float64(got.Data[i]) - float64(w)
		diff += d * d
		norm += float64(w) * float64(w)
	}
	if diff == 0 {
		return 0
	}
	return math.Sqrt(diff) / math.Sqrt(norm)
}

// formatIndex prints flat element i of shape as its index, [n,c,h,w].
func formatIndex(i int, shape []int) string {
	idx := make([]string, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		idx[d] = strconv.Itoa(i % shape[d])
		i /= shape[d]
	}
	return "[" + strings.Join(idx, ",") + "]"
}
