package interp

import (
	"math"
	"testing"
)

func TestBatchNorm(t *testing.T) {
	// Channel 0: mean 1, sd 2, scale 2, bias 0; channel 1: mean 3, sd 0.5,
	// scale 1, bias 1.
	got := run(t, `graph g(%x: f32[1,2,1,2]) -> (%1) {
  %s = const f32[2] [2, 1]
  %b = const f32[2] [0, 1]
  %m = const f32[2] [1, 3]
  %v = const f32[2] [4, 0.25]
  %1 = batchnorm %x, %s, %b, %m, %v {epsilon=0} : f32[1,2,1,2]
}`, tensor([]int{1, 2, 1, 2}, 1, 2, 3, 4))
	expect(t, got, tensor([]int{1, 2, 1, 2}, 0, 1, 1, 3))

	// Rank 2 and epsilon: var 0 + epsilon 0.25 gives sd 0.5.
	got = run(t, `graph g(%x: f32[2,1]) -> (%1) {
  %s = const f32[1] [1]
  %b = const f32[1] [0]
  %m = const f32[1] [0]
  %v = const f32[1] [0]
  %1 = batchnorm %x, %s, %b, %m, %v {epsilon=0.25} : f32[2,1]
}`, tensor([]int{2, 1}, 1, -3))
	expect(t, got, tensor([]int{2, 1}, 2, -6))
}

func TestLayerNorm(t *testing.T) {
	// Row 0: mean 2.5, biased variance 1.25. Row 1: mean 0, variance 1.
	// scale [1,2,1,1], bias 1 broadcast to [4].
	sd := math.Sqrt(1.25)
	n := func(v float64) float32 { return float32((v - 2.5) / sd) }
	got := run(t, `graph g(%x: f32[2,4]) -> (%1) {
  %s = const f32[4] [1, 2, 1, 1]
  %b = const f32[1] [1]
  %1 = layernorm %x, %s, %b {axis=1, epsilon=0} : f32[2,4]
}`, tensor([]int{2, 4}, 1, 2, 3, 4, -1, 1, -1, 1))
	expect(t, got, tensor([]int{2, 4},
		n(1)+1, 2*n(2)+1, n(3)+1, n(4)+1,
		-1+1, 2+1, -1+1, 1+1))

	// Over the last two dims of [2,1,2] (axis 1), no bias, scale [2]
	// broadcast to [1,2]; epsilon 3 on a variance of 1 gives sd 2.
	got = run(t, `graph g(%x: f32[2,1,2]) -> (%1) {
  %s = const f32[2] [1, 10]
  %1 = layernorm %x, %s {axis=1, epsilon=3} : f32[2,1,2]
}`, tensor([]int{2, 1, 2}, 1, 3, 5, 3))
	expect(t, got, tensor([]int{2, 1, 2}, -0.5, 5, 0.5, -5))
}

func TestLRN(t *testing.T) {
	x := tensor([]int{1, 3, 1, 1}, 1, 2, 3)
	// size 2: channel c sums channels c .. c+1 (floor(1/2) = 0 below,
	// ceil(1/2) = 1 above); alpha/size = 1.5.
	got := run(t, `graph g(%x: f32[1,3,1,1]) -> (%1) {
  %1 = lrn %x {alpha=3, beta=1, bias=1, size=2} : f32[1,3,1,1]
}`, x)
	expect(t, got, tensor([]int{1, 3, 1, 1}, 1/(1+1.5*5), 2/(1+1.5*13), 3/(1+1.5*9)))
	// size 3: channels c-1 .. c+1; alpha/size = 1, beta 0.5, bias 2.
	got = run(t, `graph g(%x: f32[1,3,1,1]) -> (%1) {
  %1 = lrn %x {alpha=3, beta=0.5, bias=2, size=3} : f32[1,3,1,1]
}`, x)
	expect(t, got, tensor([]int{1, 3, 1, 1},
		float32(1/math.Sqrt(2+5)), float32(2/math.Sqrt(2+14)), float32(3/math.Sqrt(2+13))))
	// Positions along the spatial dims are independent.
	got = run(t, `graph g(%x: f32[1,2,1,2]) -> (%1) {
  %1 = lrn %x {alpha=2, beta=1, bias=1, size=2} : f32[1,2,1,2]
}`, tensor([]int{1, 2, 1, 2}, 1, 2, 3, 4))
	expect(t, got, tensor([]int{1, 2, 1, 2}, 1.0/(1+1+9), 2.0/(1+4+16), 3.0/(1+9), 4.0/(1+16)))
}
