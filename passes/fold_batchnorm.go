package passes

import (
	"math"
	"slices"

	"cnnc/ir"
)

// FoldBatchNorm folds an inference batch-norm that follows a convolution
// into the convolution's weights and bias:
//
//	s = scale / sqrt(var + eps);  w' = w * s[m];  b' = (b - mean) * s + bias
//
// (computed in float64). The conv's weights must be constant and read by
// that conv alone.
//
// Before: a verified graph. After: no batchnorm reads a foldable conv.
func FoldBatchNorm(g *ir.Graph, c *Context) error {
	users := g.Users()
	dead := map[*ir.Node]bool{}
	for _, bn := range slices.Clone(g.Nodes) {
		if bn.Op != ir.OpBatchNorm {
			continue
		}
		conv := bn.Inputs[0].Def
		if conv == nil || conv.Op != ir.OpConv2D || len(users[conv.Out]) != 1 || isOutput(g, conv.Out) {
			continue
		}
		w, ok := constData(conv.Inputs[1])
		if !ok || len(users[conv.Inputs[1]]) != 1 {
			continue
		}
		var params [4][]float32
		foldable := true
		for i := range params {
			t, ok := constData(bn.Inputs[i+1])
			if !ok {
				foldable = false
				break
			}
			params[i] = t.Float32s()
		}
		if !foldable {
			continue
		}
		scale, shift, mean, vr := params[0], params[1], params[2], params[3]
		eps := bn.Float("epsilon")
		m := len(scale)
		ws := w.Float32s()
		per := len(ws) / m
		var bias []float32
		if len(conv.Inputs) > 2 {
			b, ok := constData(conv.Inputs[2])
			if !ok {
				continue
			}
			bias = b.Float32s()
		}
		newW := make([]float32, len(ws))
		newB := make([]float32, m)
		for o := range m {
			s := float64(scale[o]) / math.Sqrt(float64(vr[o])+eps)
			for j := range per {
				newW[o*per+j] = float32(float64(ws[o*per+j]) * s)
			}
			b0 := 0.0
			if bias != nil {
				b0 = float64(bias[o])
			}
			newB[o] = float32((b0-float64(mean[o]))*s + float64(shift[o]))
		}
		wBlob := conv.Inputs[1].Def.Blob
		if wBlob == "" {
			wBlob = "w_" + conv.Out.Name
		}
		wv := constBefore(g, conv, ir.NewF32(w.Shape, newW), blobName(wBlob+"_bn", len(newW)))
		bv := constBefore(g, conv, ir.NewF32([]int{m}, newB), blobName(wBlob+"_bn_bias", m))
		conv.Inputs = []*ir.Value{conv.Inputs[0], wv, bv}
		replaceAllUses(g, bn.Out, conv.Out)
		if bn.Origin != "" && conv.Origin != "" {
			conv.Origin += "+" + bn.Origin
		}
		dead[bn] = true
	}
	removeNodes(g, dead)
	return DeadCode(g, c)
}

// blobName keeps small constants inline in the text form, where a reader
// can check them.
func blobName(name string, elems int) string {
	if elems <= 8 {
		return ""
	}
	return name
}
