#!/usr/bin/env python3
"""Per-kernel summary of cnnc bench reports (one JSON report per line):
time per kernel class and the slowest -O2 kernels with their tiles.

Usage: bench/kernel_table.py bench.jsonl [--top N] [--opt 2]
"""
import argparse
import collections
import json

ap = argparse.ArgumentParser()
ap.add_argument("reports")
ap.add_argument("--top", type=int, default=20)
ap.add_argument("--opt", type=int, default=2)
a = ap.parse_args()
for line in open(a.reports):
    r = json.loads(line)
    for v in r["variants"]:
        if v["opt_level"] != a.opt:
            continue
        print("%s b%d -O%d: %.3f ms graph, utilization %.1f%%" % (
            r["model"], r["batch"], a.opt, v["median_ms_graph"], 100 * v["utilization_graph"]))
        t, fl = collections.Counter(), collections.Counter()
        for k in v["kernels"]:
            name = k["kernel"].split("_", 1)[1]
            t[name] += k["measured_us"]
            fl[name] += k["model_flops"]
        for name, us in t.most_common():
            print("  %-32s %8.1f us %7.1f TFLOP/s" % (name, us, fl[name] / us / 1e6))
        for k in sorted(v["kernels"], key=lambda k: -k["measured_us"])[:a.top]:
            f = k["features"]
            tl = f["Tile"]
            print("  %-32s %7.1f us %6.1f TFLOP/s pred %7.1f us tile %dx%dx%d/%dx%d blocks %d kslices %d shared %d" % (
                k["kernel"], k["measured_us"], k["model_flops"] / k["measured_us"] / 1e6, k["predicted_us"],
                tl["BM"], tl["BN"], tl["BK"], tl["TM"], tl["TN"], f["Blocks"], f["KSlices"], f["Shared"]))
