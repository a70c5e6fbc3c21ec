package interp

import (
	"cnnc/ir"
)

// colBlock is the number of result columns one task computes, so that a
// product with a single row (batch 1) still spreads over the workers.
const colBlock = 256

// productBlock sets acc[jj] = sum over k of a[k] * B[k, j0+jj] in float64,
// for one row a of the left operand. B has K = len(a) rows and n columns,
// stored row-major as [K, n], or as its transpose [n, K] when bt is set:
// then each result is a dot product of two contiguous rows, and otherwise
// the inner loop runs along a row of B.
func productBlock(acc []float64, a, b []float32, n, j0 int, bt bool) {
	K := len(a)
	if bt {
		for jj := range acc {
			br := b[(j0+jj)*K:][:K]
			var s float64
			for k, av := range a {
				s += float64(av) * float64(br[k])
			}
			acc[jj] = s
		}
		return
	}
	clear(acc)
	for k, av := range a {
		v := float64(av)
		br := b[k*n+j0:][:len(acc)]
		for jj := range acc {
			acc[jj] += v * float64(br[jj])
		}
	}
}

// transpose2D returns the [cols, rows] transpose of a row-major [rows, cols]
// matrix.
func transpose2D(a []float32, rows, cols int) []float32 {
	t := make([]float32, len(a))
	for i := range rows {
		for j := range cols {
			t[j*rows+i] = a[i*cols+j]
		}
	}
	return t
}

// product computes count matrix products of [M,K] x [K,N] (or x [N,K]^T
// when bt), the i-th reading a at aOff[i] and b at bOff[i], and calls
// store(i, r, j0, acc) with acc the float64 sums of row r, columns j0 ..
// j0+len(acc)-1 of product i. Tasks of one row and up to colBlock columns
// are spread over the workers.
func (e *evaluator) product(a, b []float32, aOff, bOff []int, M, K, N int, bt bool, store func(i, r, j0 int, acc []float64)) {
	blocks := (N + colBlock - 1) / colBlock
	acc := newScratch(e.workers)
	e.parallel(len(aOff)*M*blocks, func(w, task int) {
		i, r, blk := task/(M*blocks), task/blocks%M, task%blocks
		j0 := blk * colBlock
		s := acc.get(w, min(colBlock, N-j0))
		bm := b[bOff[i]:][:K*N]
		productBlock(s, a[aOff[i]+r*K:][:K], bm, N, j0, bt)
		store(i, r, j0, s)
	})
}

// evalGemm is y = alpha * op(a) x op(b) + beta * c, op(t) being t or its
// transpose as trans_a and trans_b say, and c (optional) broadcast to
// [M, N].
func evalGemm(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	a := in[0].Data
	K := in[0].Shape[1]
	if n.Int("trans_a") != 0 {
		a, K = transpose2D(a, in[0].Shape[0], in[0].Shape[1]), in[0].Shape[0]
	}
	out := New(n.Out.Type.Shape)
	M, N := out.Shape[0], out.Shape[1]
	var c []float32
	if len(in) == 3 {
		c = broadcastTo(in[2], out.Shape)
	}
	alpha, beta := n.Float("alpha"), n.Float("beta")
	e.product(a, in[1].Data, []int{0}, []int{0}, M, K, N, n.Int("trans_b") != 0, func(_, r, j0 int, acc []float64) {
		y := out.Data[r*N+j0:][:len(acc)]
		for jj, v := range acc {
			s := alpha * v
			if c != nil {
				s += beta * float64(c[r*N+j0+jj])
			}
			y[jj] = float32(s)
		}
	})
	return out, nil
}

// evalMatMul is numpy's matmul: a 1-D a is a row [1,K] and a 1-D b a
// column [K,1] (their unit dim dropped from the result), and the batch dims
// before the last two broadcast.
func evalMatMul(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	a, b := in[0], in[1]
	batch, M, K, N, err := ir.MatMulDims(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	out := New(n.Out.Type.Shape)
	// The offset (in elements) of each operand's matrix for each batch index.
	nb := int(ir.ShapeElems(batch))
	aBatch, bBatch := matrixBatchStrides(a.Shape, batch, M*K), matrixBatchStrides(b.Shape, batch, K*N)
	aOff, bOff := make([]int, nb), make([]int, nb)
	bs := ir.Strides(batch)
	for bi := range nb {
		rest := bi
		for d := range batch {
			i := rest / bs[d]
			rest %= bs[d]
			aOff[bi] += i * aBatch[d]
			bOff[bi] += i * bBatch[d]
		}
	}
	e.product(a.Data, b.Data, aOff, bOff, M, K, N, false, func(i, r, j0 int, acc []float64) {
		y := out.Data[(i*M+r)*N+j0:][:len(acc)]
		for jj, v := range acc {
			y[jj] = float32(v)
		}
	})
	return out, nil
}

// matrixBatchStrides are the strides, in elements, with which the matrices
// of an operand of shape s (a stack of matrices of size elems over its
// dims before the last two) are read for the broadcast batch shape.
func matrixBatchStrides(s, batch []int, elems int) []int {
	var own []int
	if len(s) > 2 {
		own = s[:len(s)-2]
	}
	st := broadcastStrides(own, batch)
	for i := range st {
		st[i] *= elems
	}
	return st
}
