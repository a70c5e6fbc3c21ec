package interp

import (
	"fmt"
	"sync"
	"sync/atomic"

	"cnnc/ir"
)

// parallel calls body(w, i) for every i in [0, n) on up to e.workers
// goroutines; w in [0, workers) names the goroutine so that body can keep
// per-worker scratch space. Tasks are handed out one at a time, so uneven
// tasks balance. A panic in body is re-raised on the calling goroutine.
func (e *evaluator) parallel(n int, body func(w, i int)) {
	workers := min(e.workers, n)
	if workers <= 1 {
		for i := range n {
			body(0, i)
		}
		return
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		panicked atomic.Value
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					panicked.CompareAndSwap(nil, fmt.Sprint(r))
				}
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || panicked.Load() != nil {
					return
				}
				body(w, i)
			}
		}()
	}
	wg.Wait()
	if r := panicked.Load(); r != nil {
		panic(r)
	}
}

// scratch holds one float64 buffer per worker.
type scratch [][]float64

func newScratch(workers int) scratch { return make(scratch, workers) }

// get returns worker w's buffer of length n (contents unspecified).
func (s scratch) get(w, n int) []float64 {
	if cap(s[w]) < n {
		s[w] = make([]float64, n)
	}
	return s[w][:n]
}

// broadcastStrides returns the strides with which a row-major tensor of
// shape in is read as shape out under numpy broadcasting: a missing leading
// dim or a dim of size 1 is read with stride 0.
func broadcastStrides(in, out []int) []int {
	st := ir.Strides(in)
	s := make([]int, len(out))
	lead := len(out) - len(in)
	for d := range out {
		if j := d - lead; j >= 0 && in[j] != 1 {
			s[d] = st[j]
		}
	}
	return s
}

// broadcastTo returns the data of t read as shape (numpy broadcasting).
func broadcastTo(t *Tensor, shape []int) []float32 {
	out := make([]float32, ir.ShapeElems(shape))
	gather(out, shape, t.Data, 0, broadcastStrides(t.Shape, shape))
	return out
}

// forEachRow visits the rows of shape (runs along its last dim) in
// row-major order. For each row it passes the row number, the indices of
// the outer dims (idx[d] for d < rank-1) and, for every stride list k, the
// offset offs[k] = sum over outer dims of idx[d]*strides[k][d]. A rank-0
// shape has one row of one element. visit must not modify idx or offs.
func forEachRow(shape []int, strides [][]int, visit func(row int, idx, offs []int)) {
	elems := int(ir.ShapeElems(shape))
	if elems == 0 {
		return
	}
	r := len(shape)
	rows := 1
	if r > 0 {
		rows = elems / shape[r-1]
	}
	idx := make([]int, max(r-1, 0))
	offs := make([]int, len(strides))
	for row := range rows {
		visit(row, idx, offs)
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			for k := range offs {
				offs[k] += strides[k][d]
			}
			if idx[d] < shape[d] {
				break
			}
			for k := range offs {
				offs[k] -= strides[k][d] * shape[d]
			}
			idx[d] = 0
		}
	}
}

// rowLen is the length of a row (the last dim) of shape; 1 for a scalar.
func rowLen(shape []int) int {
	if len(shape) == 0 {
		return 1
	}
	return shape[len(shape)-1]
}

// lastStride is the stride of the last dim in strides; 0 for a scalar.
func lastStride(strides []int) int {
	if len(strides) == 0 {
		return 0
	}
	return strides[len(strides)-1]
}

// gather fills dst (row-major, of shape) with dst[i] = src[base + sum_d
// i_d*strides[d]] where (i_0, ..., i_r-1) is the index of element i.
// Strides may be zero (broadcast) or negative (reversed slices).
func gather(dst []float32, shape []int, src []float32, base int, strides []int) {
	n, s := rowLen(shape), lastStride(strides)
	forEachRow(shape, [][]int{strides}, func(row int, _, offs []int) {
		y := dst[row*n : row*n+n]
		at := base + offs[0]
		for j := range y {
			y[j] = src[at+j*s]
		}
	})
}

// sizes splits shape at axis into the element counts before it (outer),
// of it (mid) and after it (inner).
func sizes(shape []int, axis int) (outer, mid, inner int) {
	return int(ir.ShapeElems(shape[:axis])), shape[axis], int(ir.ShapeElems(shape[axis+1:]))
}

// floorDiv is a/b rounded toward minus infinity, for b > 0.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// windowRange is the half-open range [lo, hi) of output positions o in
// [0, outLen) whose input position o*stride + offset lies in [0, size):
// the positions where one kernel tap reads real input rather than padding.
func windowRange(outLen, stride, offset, size int) (lo, hi int) {
	lo = max(0, -floorDiv(offset, stride)) // ceil(-offset/stride)
	hi = min(outLen, floorDiv(size-1-offset, stride)+1)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}
