package runtime

import (
	"time"

	"cnnc/runtime/cuda"
)

// spinPTX holds cnnc_spin(ns): one thread that returns once the GPU's
// nanosecond timer (%globaltimer) has advanced by ns.
const spinPTX = `.version 7.0
.target sm_80
.address_size 64

.visible .entry cnnc_spin(
	.param .u64 cnnc_spin_param_0
)
{
	.reg .pred 	%p<2>;
	.reg .b64 	%rd<5>;

	ld.param.u64 	%rd1, [cnnc_spin_param_0];
	mov.u64 	%rd2, %globaltimer;
	add.s64 	%rd3, %rd2, %rd1;
$L__spin:
	mov.u64 	%rd4, %globaltimer;
	setp.lt.u64 	%p1, %rd4, %rd3;
	@%p1 bra 	$L__spin;
	ret;
}
`

// spinKernel keeps the GPU busy for a while, so that work queued behind it
// runs back to back however slowly the host queues it.
type spinKernel struct {
	module *cuda.Module
	fn     cuda.Function
	params *cuda.Params
}

func (e *Executor) loadSpin() error {
	if e.spin != nil {
		return nil
	}
	mod, err := e.dev.LoadModule([]byte(spinPTX))
	if err != nil {
		return err
	}
	fn, err := mod.Function("cnnc_spin")
	if err != nil {
		mod.Unload()
		return err
	}
	e.spin = &spinKernel{module: mod, fn: fn, params: cuda.NewParams(1)}
	return nil
}

// hold queues the spin kernel on s for d.
func (k *spinKernel) hold(b *cuda.Batch, s cuda.Stream, d time.Duration) error {
	k.params.SetU64(0, uint64(d.Nanoseconds()))
	one := cuda.Dim3{X: 1, Y: 1, Z: 1}
	return b.Launch(k.fn, one, one, 0, s, k.params)
}
