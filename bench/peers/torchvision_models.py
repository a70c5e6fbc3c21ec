#!/usr/bin/env python3
"""PyTorch side of cnnc's GPU checks and baselines (runs on the GPU machine).

  export  --models M,... --out DIR [--batches 1,8] [--dynamo M,...]
          torchvision models with seeded random weights -> DIR/<model>.onnx
          (TorchScript exporter, opset 17, dynamic batch), plus for each batch
          DIR/<model>_b<B>_input.npy and DIR/<model>_b<B>_output.npy: PyTorch
          fp32 outputs with TF32 off, the reference cnnc must match.
          Models named in --dynamo are also exported by the dynamo exporter
          (opset 18, weights as external data) to DIR/<model>_dynamo.onnx.
  eager   --models M,... --batches 1,32 [--iters N]
          PyTorch eager fp32 (TF32 off) median latency with CUDA events,
          one JSON object per line.
  peak    fp32 matrix-product peak (TF32 off) of the card, TFLOP/s, JSON.
  peers   --models M,... --batches 1,32 [--precision fp16] [--modes eager,graph,reduce-overhead,max-autotune]
          the PyTorch peers of `cnnc bench`: eager (cudnn.benchmark, channels_last),
          eager replayed as a CUDA graph, and torch.compile in the modes named; median
          latency with CUDA events and each peer's compile time, one JSON object per
          line (`cnnc bench --peers FILE` puts them beside cnnc's rows).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision


def fp32_exact():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def make_model(name, seed=0):
    torch.manual_seed(seed)
    m = getattr(torchvision.models, name)(weights=None)
    m.eval()
    # Random batch-norm statistics, so folding and normalization are exercised.
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.rand(mod.num_features, generator=g) * 0.2 - 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m


def input_size(name):
    return 299 if name.startswith("inception") else 224


def cmd_export(args):
    fp32_exact()
    os.makedirs(args.out, exist_ok=True)
    dynamo = set(filter(None, args.dynamo.split(",")))
    for name in args.models.split(","):
        m = make_model(name).cuda()
        s = input_size(name)
        path = os.path.join(args.out, name + ".onnx")
        x1 = torch.randn(1, 3, s, s, device="cuda")
        t0 = time.time()
        torch.onnx.export(m, (x1,), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
        info = {"model": name, "onnx": path, "exporter": "torchscript", "opset": 17,
                "export_s": round(time.time() - t0, 2)}
        if name in dynamo:
            dpath = os.path.join(args.out, name + "_dynamo.onnx")
            t0 = time.time()
            prog = torch.onnx.export(m, (x1,), dynamo=True, opset_version=18,
                                     input_names=["input"], output_names=["output"])
            prog.save(dpath, external_data=True)
            info["dynamo"] = {"onnx": dpath, "opset": 18, "export_s": round(time.time() - t0, 2)}
        for b in [int(v) for v in args.batches.split(",")]:
            gen = torch.Generator(device="cuda").manual_seed(1000 + b)
            x = torch.randn(b, 3, s, s, device="cuda", generator=gen)
            with torch.no_grad():
                y = m(x)
            base = os.path.join(args.out, "%s_b%d" % (name, b))
            np.save(base + "_input.npy", x.cpu().numpy().astype(np.float32))
            np.save(base + "_output.npy", y.float().cpu().numpy())
        print(json.dumps(info), flush=True)


def median_ms(fn, warmup, iters):
    """Median of iterations queued back to back, each between two CUDA
    events on the current stream: the method cnnc's runtime uses."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
    for a, b in events:
        a.record()
        fn()
        b.record()
    torch.cuda.synchronize()
    times = sorted(a.elapsed_time(b) for a, b in events)
    return times[len(times) // 2]


def cmd_eager(args):
    fp32_exact()
    torch.backends.cudnn.benchmark = True
    for name in args.models.split(","):
        m = make_model(name).cuda()
        s = input_size(name)
        for b in [int(v) for v in args.batches.split(",")]:
            x = torch.randn(b, 3, s, s, device="cuda")
            with torch.no_grad():
                ms = median_ms(lambda: m(x), 10, args.iters)
            print(json.dumps({"peer": "pytorch-eager-fp32", "model": name, "batch": b,
                              "median_ms": round(ms, 4), "card": torch.cuda.get_device_name()}), flush=True)


def graph_replay(fn, x):
    """Capture fn(x) once into a CUDA graph (after warm-up on a side
    stream, as PyTorch requires) and return a replay function."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn(x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn(x)
    return g.replay


def cmd_peers(args):
    torch.backends.cudnn.benchmark = True
    half = args.precision == "fp16"
    if not half:
        fp32_exact()
    modes = args.modes.split(",")
    for name in args.models.split(","):
        for b in [int(v) for v in args.batches.split(",")]:
            m = make_model(name).cuda().to(memory_format=torch.channels_last)
            if half:
                m = m.half()
            s = input_size(name)
            x = torch.randn(b, 3, s, s, device="cuda").to(memory_format=torch.channels_last)
            if half:
                x = x.half()
            for mode in modes:
                row = {"peer": "pytorch-" + mode, "model": name, "batch": b, "precision": args.precision,
                       "card": torch.cuda.get_device_name()}
                try:
                    t0 = time.time()
                    with torch.no_grad():
                        if mode == "eager":
                            fn = lambda: m(x)
                        elif mode == "graph":
                            fn = graph_replay(lambda v: m(v), x)
                        else:
                            c = torch.compile(m, mode=mode)
                            c(x)  # compiles
                            fn = lambda: c(x)
                        fn()
                        torch.cuda.synchronize()
                        row["compile_s"] = round(time.time() - t0, 2)
                        row["median_ms"] = round(median_ms(fn, 10, args.iters), 4)
                except Exception as e:  # a peer that fails is reported, the rest go on
                    row["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
                print(json.dumps(row), flush=True)


def cmd_peak(args):
    fp32_exact()
    n = 8192
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    ms = median_ms(lambda: a @ b, 3, 10)
    print(json.dumps({"peak": "fp32-matmul", "n": n, "tflops": round(2 * n**3 / ms / 1e9, 2),
                      "card": torch.cuda.get_device_name()}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--models", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--batches", default="1,8")
    e.add_argument("--dynamo", default="")
    g = sub.add_parser("eager")
    g.add_argument("--models", required=True)
    g.add_argument("--batches", default="1,32")
    g.add_argument("--iters", type=int, default=50)
    sub.add_parser("peak")
    q = sub.add_parser("peers")
    q.add_argument("--models", required=True)
    q.add_argument("--batches", default="1,32")
    q.add_argument("--precision", choices=["fp32", "fp16"], default="fp16")
    q.add_argument("--modes", default="eager,graph,reduce-overhead")
    q.add_argument("--iters", type=int, default=50)
    args = p.parse_args()
    {"export": cmd_export, "eager": cmd_eager, "peak": cmd_peak, "peers": cmd_peers}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
