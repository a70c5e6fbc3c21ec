package onnx

import "cnnc/ir"

// importers is the importer table: one row per ONNX op type, with the
// opset that introduced it. Rows whose op changed meaning across opsets
// read c.opset inside their function.
var importers map[string]opImporter

func init() {
	importers = map[string]opImporter{
		// Convolution, pooling and normalization.
		"Conv":               {1, importConv},
		"MaxPool":            {1, importPool(ir.OpMaxPool)},
		"AveragePool":        {1, importPool(ir.OpAvgPool)},
		"GlobalAveragePool":  {1, importSimple(ir.OpGlobalAvgPool)},
		"GlobalMaxPool":      {1, importSimple(ir.OpGlobalMaxPool)},
		"BatchNormalization": {1, importBatchNorm},
		"LayerNormalization": {17, importLayerNorm},
		"LRN":                {1, importLRN},

		// Matrix products.
		"Gemm":   {1, importGemm},
		"MatMul": {1, importSimple(ir.OpMatMul)},

		// Activations.
		"Relu":        {1, importUnary(ir.OpRelu)},
		"Sigmoid":     {1, importUnary(ir.OpSigmoid)},
		"Tanh":        {1, importUnary(ir.OpTanh)},
		"Erf":         {9, importUnary(ir.OpErf)},
		"Exp":         {1, importUnary(ir.OpExp)},
		"Sqrt":        {1, importUnary(ir.OpSqrt)},
		"Neg":         {1, importUnary(ir.OpNeg)},
		"Abs":         {1, importUnary(ir.OpAbs)},
		"Reciprocal":  {1, importUnary(ir.OpReciprocal)},
		"Softplus":    {1, importUnary(ir.OpSoftplus)},
		"Mish":        {18, importUnary(ir.OpMish)},
		"HardSwish":   {14, importUnary(ir.OpHardSwish)},
		"LeakyRelu":   {1, importUnary(ir.OpLeakyRelu, floatAttr{"alpha", 0.01})},
		"Elu":         {1, importUnary(ir.OpElu, floatAttr{"alpha", 1})},
		"Selu":        {1, importUnary(ir.OpSelu, floatAttr{"alpha", 1.67326319217681884765625}, floatAttr{"gamma", 1.05070102214813232421875})},
		"HardSigmoid": {1, importUnary(ir.OpHardSigmoid, floatAttr{"alpha", 0.2}, floatAttr{"beta", 0.5})},
		"Swish":       {24, importUnary(ir.OpSwish, floatAttr{"alpha", 1})},
		"Gelu":        {20, importGelu},
		"Clip":        {1, importClip},
		"PRelu":       {1, importBinary(ir.OpPRelu)},

		// Element-wise arithmetic with numpy broadcasting.
		"Add":   {1, importBinary(ir.OpAdd)},
		"Sub":   {1, importBinary(ir.OpSub)},
		"Mul":   {1, importBinary(ir.OpMul)},
		"Div":   {1, importBinary(ir.OpDiv)},
		"Pow":   {1, importBinary(ir.OpPow)},
		"Sum":   {1, importVariadic(ir.OpAdd)},
		"Max":   {1, importVariadic(ir.OpMax)},
		"Min":   {1, importVariadic(ir.OpMin)},
		"Equal": {1, importBinary(nil)},
		"Where": {9, importWhere},

		// Layout.
		"Reshape":   {1, importReshape},
		"Flatten":   {1, importFlatten},
		"Squeeze":   {1, importSqueeze},
		"Unsqueeze": {1, importUnsqueeze},
		"Transpose": {1, importTranspose},
		"Concat":    {1, importConcat},
		"Split":     {1, importSplit},
		"Slice":     {1, importSlice},
		"Pad":       {1, importPad},
		"Gather":    {1, importGather},

		// Reductions.
		"Softmax":    {1, importSoftmax},
		"ReduceMean": {1, importReduceMean},

		// Constants, shape computations and no-ops at inference.
		"Constant":        {1, importConstant},
		"ConstantOfShape": {9, importConstantOfShape},
		"Shape":           {1, importShape},
		"Cast":            {1, importCast},
		"Range":           {11, importRange},
		"Expand":          {8, importExpand},
		"Identity":        {1, importIdentity},
		"Dropout":         {1, importDropout},
	}
}
