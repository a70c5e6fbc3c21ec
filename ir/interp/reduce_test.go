package interp

import (
	"math"
	"testing"
)

func TestSoftmax(t *testing.T) {
	// Large inputs: exp(1002) overflows float64, exp(x - max) does not.
	e1, e2 := math.Exp(-1), math.Exp(-2)
	sum := 1 + e1 + e2
	got := run(t, `graph g(%x: f32[1,3]) -> (%1) {
  %1 = softmax %x {axis=1} : f32[1,3]
}`, tensor([]int{1, 3}, 1000, 1001, 1002))
	expect(t, got, tensor([]int{1, 3}, float32(e2/sum), float32(e1/sum), float32(1/sum)))

	// Axis 0 of [[0, 0], [ln 3, -inf]]: columns (1/4, 3/4) and (1, 0).
	ninf := float32(math.Inf(-1))
	got = run(t, `graph g(%x: f32[2,2]) -> (%1) {
  %1 = softmax %x {axis=0} : f32[2,2]
}`, tensor([]int{2, 2}, 0, 0, float32(math.Log(3)), ninf))
	expect(t, got, tensor([]int{2, 2}, 0.25, 1, 0.75, 0))

	// Middle axis of [2,3,2]: each line of 3 sums to 1, lines independent.
	got = run(t, `graph g(%x: f32[2,3,2]) -> (%1) {
  %1 = softmax %x {axis=1} : f32[2,3,2]
}`, tensor([]int{2, 3, 2}, 0, 5, 0, 5, 0, 5, 1, 0, 1, 0, 1, 0))
	third := float32(1.0 / 3)
	expect(t, got, tensor([]int{2, 3, 2}, third, third, third, third, third, third, third, third, third, third, third, third))
}

func TestReduceMean(t *testing.T) {
	// x[i,j,k] = 6i + 2j + k for a [2,3,2].
	x := iota([]int{2, 3, 2}, 0)
	got := run(t, `graph g(%x: f32[2,3,2]) -> (%1) {
  %1 = reduce_mean %x {axes=[0,2], keepdims=1} : f32[1,3,1]
}`, x)
	// Mean over i and k of 6i + 2j + k = 3 + 2j + 0.5.
	expect(t, got, tensor([]int{1, 3, 1}, 3.5, 5.5, 7.5))
	got = run(t, `graph g(%x: f32[2,3,2]) -> (%1) {
  %1 = reduce_mean %x {axes=[0,2], keepdims=0} : f32[3]
}`, x)
	expect(t, got, tensor([]int{3}, 3.5, 5.5, 7.5))
	// Mean over j: 6i + 2 + k.
	got = run(t, `graph g(%x: f32[2,3,2]) -> (%1) {
  %1 = reduce_mean %x {axes=[1], keepdims=0} : f32[2,2]
}`, x)
	expect(t, got, tensor([]int{2, 2}, 2, 3, 8, 9))
	// Everything: a scalar.
	got = run(t, `graph g(%x: f32[2,3,2]) -> (%1) {
  %1 = reduce_mean %x {axes=[0,1,2], keepdims=0} : f32[]
}`, x)
	expect(t, got, tensor([]int{}, 5.5))
}
