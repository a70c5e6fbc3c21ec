package interp

import (
	"cnnc/ir"
)

// matMulRow sets acc[j] = sum over k of arow[k] * b[k*n + j] for a
// row-major b with n columns, in float64. The inner loop runs along a row
// of b.
func matMulRow(acc []float64, arow, b []float32) {
	n := len(acc)
	clear(acc)
	for k, av := range arow {
		a := float64(av)
		br := b[k*n:][:n]
		for j := range acc {
			acc[j] += a * float64(br[j])
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

// evalGemm is y = alpha * op(a) x op(b) + beta * c, op(t) being t or its
// transpose as trans_a and trans_b say, and c (optional) broadcast to
// [M, N]. Rows of y are spread over the workers.
func evalGemm(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	a, b := in[0].Data, in[1].Data
	if n.Int("trans_a") != 0 {
		a = transpose2D(a, in[0].Shape[0], in[0].Shape[1])
	}
	if n.Int("trans_b") != 0 {
		b = transpose2D(b, in[1].Shape[0], in[1].Shape[1])
	}
	out := New(n.Out.Type.Shape)
	M, N := out.Shape[0], out.Shape[1]
	K := in[0].Shape[1]
	if n.Int("trans_a") != 0 {
		K = in[0].Shape[0]
	}
	var c []float32
	if len(in) == 3 {
		c = broadcastTo(in[2], out.Shape)
	}
	alpha, beta := n.Float("alpha"), n.Float("beta")
	acc := newScratch(e.workers)
	e.parallel(M, func(w, i int) {
		s := acc.get(w, N)
		matMulRow(s, a[i*K:][:K], b)
		y := out.Data[i*N:][:N]
		for j, v := range s {
			r := alpha * v
			if c != nil {
				r += beta * float64(c[i*N+j])
			}
			y[j] = float32(r)
		}
	})
	return out, nil
}

// evalMatMul is numpy's matmul: a 1-D a is a row [1,K] and a 1-D b a
// column [K,1] (their unit dim dropped from the result), and the batch dims
// before the last two broadcast. Each (batch, row) pair is one task.
func evalMatMul(e *evaluator, n *ir.Node, in []*Tensor) (*Tensor, error) {
	a, b := in[0], in[1]
	batch, M, K, N, err := ir.MatMulDims(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	out := New(n.Out.Type.Shape)
	// Batch offsets (in elements) of each operand's matrices.
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
	acc := newScratch(e.workers)
	e.parallel(nb*M, func(w, task int) {
		bi, i := task/M, task%M
		s := acc.get(w, N)
		matMulRow(s, a.Data[aOff[bi]+i*K:][:K], b.Data[bOff[bi]:][:K*N])
		y := out.Data[task*N:][:N]
		for j, v := range s {
			y[j] = float32(v)
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
