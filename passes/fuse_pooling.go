package passes

import (
	"cnnc/ir"
)

// FusePooling computes a global average pool inside the classifier GEMM
// that reads it (through a flatten), as the GEMM's A operand: the pooled
// tensor never goes to memory and one launch disappears.
//
// Before: fuse-epilogue ran. After: pool, flatten and GEMM share a kernel
// id when the cost model predicts a gain.
func FusePooling(g *ir.Graph, c *Context) error {
	users := g.Users()
	for _, gap := range g.Nodes {
		if gap.Op != ir.OpGlobalAvgPool || gap.Sched.Kernel != 0 || len(users[gap.Out]) != 1 || isOutput(g, gap.Out) {
			continue
		}
		flat := users[gap.Out][0]
		if flat.Op != ir.OpReshape || flat.Out.Type.Rank() != 2 || len(users[flat.Out]) != 1 || isOutput(g, flat.Out) {
			continue
		}
		gemm := users[flat.Out][0]
		if gemm.Op != ir.OpGemm || gemm.Inputs[0] != flat.Out || gemm.Int("trans_a") != 0 {
			continue
		}
		gemmNodes := kernelNodes(g, gemm)
		separate := append([]*ir.Node{gap}, gemmNodes...)
		fused := append([]*ir.Node{gap, flat}, gemmNodes...)
		fuseIfFaster(g, c, "fuse-pooling", "global average pool into the classifier GEMM", separate, fused)
	}
	return nil
}
