package codegen

import (
	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/value"

	"cnnc/passes/costmodel"
)

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
	// AMContig says A is contiguous along m (stored K-major), BKContig
	// that B is contiguous along k: the loaders then give consecutive
	// threads consecutive m or k, so global loads coalesce.
	AMContig, BKContig bool
}

// splitK is how a GEMM's K is divided: Ways slices of Slice each, the
// partial sums going to Workspace[s][z][m][n] for a second kernel to add.
type splitK struct {
	Ways, Slice int
	Workspace   value.Value
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
func emitGemm(k *kernel, p gemmProblem, t costmodel.Tile, sk splitK) launchShape {
	threads := t.Threads()
	tx, ty := k.rem(k.tid(), t.BN/t.TN), k.div(k.tid(), t.BN/t.TN)
	strideX, strideY := t.BN/t.TN, t.BM/t.TM
	n0 := k.mul(k.ctaid('x'), ci(t.BN))
	m0 := k.mul(k.ctaid('y'), ci(t.BM))
	ways := max(sk.Ways, 1)
	z := k.div(k.ctaid('z'), ways)
	if p.Batch == 1 {
		z = ci(0)
	}
	var kStart, kEnd value.Value = ci(0), ci(p.K)
	if ways > 1 {
		kStart = k.mul(k.rem(k.ctaid('z'), ways), ci(sk.Slice))
		kEnd = k.min(k.add(kStart, ci(sk.Slice)), ci(p.K))
	}
	lda := t.BM + 1
	as := k.sharedBuffer("A", t.BK*lda)
	bs := k.sharedBuffer("B", t.BK*t.BN)

	// A slice of K: global loads into registers (zero outside the
	// problem), stored into shared memory after the current slice's math,
	// so the loads' latency hides behind it (software pipelining).
	type staged struct {
		v   value.Value
		buf *llir.Global
		at  value.Value
	}
	loadSlice := func(k0 value.Value) []staged {
		var out []staged
		for e := 0; e < t.BM*t.BK; e += threads {
			lin := k.add(k.tid(), ci(e))
			kk, mm := k.rem(lin, t.BK), k.div(lin, t.BK)
			if p.AMContig {
				mm, kk = k.rem(lin, t.BM), k.div(lin, t.BM)
			}
			m, kg := k.add(m0, mm), k.add(k0, kk)
			ok := k.and(k.lt(m, ci(p.M)), k.lt(kg, kEnd))
			out = append(out, staged{p.loadA(k, z, m, kg, ok), as, k.madd(kk, lda, mm)})
		}
		for e := 0; e < t.BN*t.BK; e += threads {
			lin := k.add(k.tid(), ci(e))
			nn, kk := k.rem(lin, t.BN), k.div(lin, t.BN)
			if p.BKContig {
				kk, nn = k.rem(lin, t.BK), k.div(lin, t.BK)
			}
			n, kg := k.add(n0, nn), k.add(k0, kk)
			ok := k.and(k.lt(n, ci(p.N)), k.lt(kg, kEnd))
			out = append(out, staged{p.loadB(k, z, kg, n, ok), bs, k.madd(kk, t.BN, nn)})
		}
		return out
	}
	storeSlice := func(vals []staged) {
		for _, v := range vals {
			k.store(v.v, k.sharedAt(v.buf, v.at))
		}
	}

	acc := make([]value.Value, t.TM*t.TN)
	for i := range acc {
		acc[i] = cf(0)
	}
	storeSlice(loadSlice(kStart))
	k.barrier()
	acc = k.loop(kStart, kEnd, t.BK, acc, func(k0 value.Value, acc []value.Value) []value.Value {
		next := loadSlice(k.add(k0, ci(t.BK)))
		out := append([]value.Value{}, acc...)
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
					out[i*t.TN+j] = k.fma(a[i], b[j], out[i*t.TN+j])
				}
			}
		}
		k.barrier()
		storeSlice(next)
		k.barrier()
		return out
	})
	for i := 0; i < t.TM; i++ {
		m := k.add(m0, k.add(ty, ci(i*strideY)))
		for j := 0; j < t.TN; j++ {
			n := k.add(n0, k.add(tx, ci(j*strideX)))
			v := acc[i*t.TN+j]
			k.ifThen(k.and(k.lt(m, ci(p.M)), k.lt(n, ci(p.N))), func() {
				if ways == 1 {
					p.store(k, z, m, n, v)
					return
				}
				slot := k.add(k.mul(k.ctaid('z'), ci(p.M)), m) // block z' = z*ways + split
				k.store(v, k.at(sk.Workspace, k.madd(slot, p.N, n)))
			})
		}
	}
	return launchShape{
		grid:  [3]int{ceilDiv(p.N, t.BN), ceilDiv(p.M, t.BM), p.Batch * ways},
		block: threads,
	}
}

// emitSplitKReduce is the second kernel of a split-K GEMM: one thread per
// output element adds the partial sums and runs the store (bias,
// epilogue).
func emitSplitKReduce(k *kernel, p gemmProblem, sk splitK) launchShape {
	total := p.Batch * p.M * p.N
	i := k.globalThread()
	k.exitUnless(k.lt(i, ci(total)))
	co := k.coords(i, []int{p.Batch, p.M, p.N})
	// The main kernel's block z' = z*ways + s wrote Workspace[z'][m][n].
	mn := p.M * p.N
	base := k.add(k.mul(co[0], ci(sk.Ways*mn)), k.madd(co[1], p.N, co[2]))
	var sum value.Value = cf(0)
	for s := 0; s < sk.Ways; s++ {
		sum = k.fadd(sum, k.loadAt(sk.Workspace, k.add(base, ci(s*mn))))
	}
	p.store(k, co[0], co[1], co[2], sum)
	return mapShape(total, k.threads)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
