package codegen

import (
	"github.com/llir/llvm/ir/value"
)

// gemmTile is the tile shape of the SIMT GEMM core: a BM x BN output tile
// per block of (BM/TM) x (BN/TN) threads, each computing a TM x TN register
// tile, stepping through K in slices of BK staged in shared memory.
type gemmTile struct {
	BM, BN, BK, TM, TN int
}

// defaultTile is the -O0 tile: 64x64x8, 256 threads, 4x4 per thread.
var defaultTile = gemmTile{BM: 64, BN: 64, BK: 8, TM: 4, TN: 4}

func (t gemmTile) threads() int { return (t.BM / t.TM) * (t.BN / t.TN) }

// gemmProblem describes C[z][m][n] = sum_k A[z][m][k] * B[z][k][n] through
// functions that emit element accesses, so one core serves implicit-GEMM
// convolution, Gemm and batched MatMul.
type gemmProblem struct {
	M, N, K, Batch int
	// loadA returns A[z][m][k] (zero where ok is false).
	loadA func(k *kernel, z, m, kk, ok value.Value) value.Value
	// loadB returns B[z][k][n] (zero where ok is false).
	loadB func(k *kernel, z, kk, n, ok value.Value) value.Value
	// store writes the accumulated C[z][m][n] through the epilogue; m < M
	// and n < N hold.
	store func(k *kernel, z, m, n, acc value.Value)
}

// emitGemm writes the tiled GEMM kernel body and returns its launch shape.
//
//	As[BK][BM+1], Bs[BK][BN] in shared memory (A padded against bank conflicts)
//	for k0 := 0; k0 < K; k0 += BK {
//	    stage A and B slices (coalesced: consecutive threads take consecutive k of A, n of B)
//	    barrier
//	    for kk < BK: acc[i][j] += As[kk][ty+i*TY] * Bs[kk][tx+j*TX]   (unrolled)
//	    barrier
//	}
//	store acc[i][j] at m = m0+ty+i*TY, n = n0+tx+j*TX (coalesced along n)
func emitGemm(k *kernel, p gemmProblem, t gemmTile) launchShape {
	threads := t.threads()
	tx, ty := k.rem(k.tid(), t.BN/t.TN), k.div(k.tid(), t.BN/t.TN)
	strideX, strideY := t.BN/t.TN, t.BM/t.TM
	n0 := k.mul(k.ctaid('x'), ci(t.BN))
	m0 := k.mul(k.ctaid('y'), ci(t.BM))
	z := k.ctaid('z')
	if p.Batch == 1 {
		z = ci(0)
	}
	lda := t.BM + 1
	as := k.sharedBuffer("A", t.BK*lda)
	bs := k.sharedBuffer("B", t.BK*t.BN)

	acc := make([]value.Value, t.TM*t.TN)
	for i := range acc {
		acc[i] = cf(0)
	}
	acc = k.loop(ci(0), ci(p.K), t.BK, acc, func(k0 value.Value, acc []value.Value) []value.Value {
		for e := 0; e < t.BM*t.BK; e += threads {
			lin := k.add(k.tid(), ci(e))
			kk, mm := k.rem(lin, t.BK), k.div(lin, t.BK)
			m, kg := k.add(m0, mm), k.add(k0, kk)
			ok := k.and(k.lt(m, ci(p.M)), k.lt(kg, ci(p.K)), k.lt(mm, ci(t.BM)))
			v := p.loadA(k, z, m, kg, ok)
			k.ifThen(k.lt(mm, ci(t.BM)), func() { k.store(v, k.sharedAt(as, k.madd(kk, lda, mm))) })
		}
		for e := 0; e < t.BN*t.BK; e += threads {
			lin := k.add(k.tid(), ci(e))
			nn, kk := k.rem(lin, t.BN), k.div(lin, t.BN)
			n, kg := k.add(n0, nn), k.add(k0, kk)
			ok := k.and(k.lt(n, ci(p.N)), k.lt(kg, ci(p.K)), k.lt(kk, ci(t.BK)))
			v := p.loadB(k, z, kg, n, ok)
			k.ifThen(k.lt(kk, ci(t.BK)), func() { k.store(v, k.sharedAt(bs, k.madd(kk, t.BN, nn))) })
		}
		k.barrier()
		next := append([]value.Value{}, acc...)
		for kk := 0; kk < t.BK; kk++ {
			a := make([]value.Value, t.TM)
			b := make([]value.Value, t.TN)
			for i := range a {
				a[i] = k.load(k.sharedAt(as, k.add(ci(kk*lda+i*strideY), ty)))
			}
			for j := range b {
				b[j] = k.load(k.sharedAt(bs, k.add(ci(kk*t.BN+j*strideX), tx)))
			}
			for i := range a {
				for j := range b {
					next[i*t.TN+j] = k.fma(a[i], b[j], next[i*t.TN+j])
				}
			}
		}
		k.barrier()
		return next
	})
	for i := 0; i < t.TM; i++ {
		m := k.add(m0, k.add(ty, ci(i*strideY)))
		for j := 0; j < t.TN; j++ {
			n := k.add(n0, k.add(tx, ci(j*strideX)))
			v := acc[i*t.TN+j]
			k.ifThen(k.and(k.lt(m, ci(p.M)), k.lt(n, ci(p.N))), func() { p.store(k, z, m, n, v) })
		}
	}
	return launchShape{
		grid:  [3]int{ceilDiv(p.N, t.BN), ceilDiv(p.M, t.BM), p.Batch},
		block: threads,
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
