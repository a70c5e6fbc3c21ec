#!/usr/bin/env bash
# Runs on the GPU machine from the repository root, after `make gpu-bin`
# here and with carry: [".bin.tgz"] (the script unpacks it). Usage: bench/gpu_check.sh tests|ptests|schedules|models|bench|hopper|fp16|peers|survey|nas|all|multi
# Logs go to $OUT; the last lines printed are a summary.
set -u
OUT=${OUT:-/tmp/cnnc-out}
mkdir -p "$OUT"
B=$PWD/.bin
# Unpacked once per new .bin.tgz (the stamp, not the binaries' own times,
# which tar restores): steps running in parallel never see it rewritten.
[ -f .bin.tgz ] && [ ! -f "$B/.unpacked" -o .bin.tgz -nt "$B/.unpacked" ] && tar xzf .bin.tgz && touch "$B/.unpacked"
export CNNC_ONNX_TESTS=$B/onnx-tests
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee "$OUT/card.txt"

tests() {
  for t in runtime_cuda runtime runtime_cudnn runtime_nvml cmd_cnnc e2e; do
    (cd "$B" && timeout 300 ./$t.test -test.v -test.timeout 290s) > "$OUT/test_$t.log" 2>&1
    echo "$t: exit $? $(grep -cE '^(=== RUN|    --- PASS|--- PASS)' "$OUT/test_$t.log") lines; $(grep -E '^(--- FAIL|FAIL|ok|PASS|gpu conformance)' "$OUT/test_$t.log" | tail -3 | tr '\n' ' ')"
  done
}

# ptests: the same tests as tests, side by side (each process its own CUDA
# context; timings are not their point), the e2e GPU tests in shards.
# TestCompileSchedules (CPU only, every case under every tile) is CI's:
# beside six GPU shards it ran out of 390 s here.
ptests() {
  local pids=()
  for t in runtime_cuda runtime runtime_cudnn runtime_nvml cmd_cnnc; do
    (cd "$B" && timeout 300 ./$t.test -test.v -test.timeout 290s > "$OUT/test_$t.log" 2>&1; echo "$t: exit $?" >> "$OUT/test_$t.log") &
    pids+=($!)
  done
  local i=0
  for run in 'TestGPUConformance' 'TestGPUSchedules' 'TestGPUWgmma/(conv|grouped|fc|bmm|gapfc|dwpw)$' \
    'TestGPUWgmma/(clchain|clvec|clgap|clblock|clepi)$' 'TestGPUWgmma/(clpool|stem7|stem3|stem5|shortcut)$' \
    'TestGPUWgmma/(tma|clgapbig|dwrows|clswish)$' 'TestGPUTensorCore/(conv|grouped|fc|bmm)$' \
    'TestGPUTensorCore/(gapfc|dwpw|clchain|clvec)$' 'TestGPUTensorCore/(clgap|clblock|clepi|clpool)$' \
    'TestGPUTensorCore/(stem7|stem3)$' 'TestGPUTensorCore/(stem5|shortcut)$' 'TestGPUTensorCore/(tma|clgapbig|dwrows|clswish)$' \
    '^TestGPU[^CSWT]|^Test[^GC]'; do
    (cd "$B" && timeout 400 ./e2e.test -test.v -test.run "$run" -test.timeout 390s > "$OUT/test_e2e_$i.log" 2>&1; echo "e2e shard $i ($run): exit $?" >> "$OUT/test_e2e_$i.log") &
    pids+=($!)
    i=$((i+1))
  done
  wait "${pids[@]}"
  for f in "$OUT"/test_*.log; do tail -1 "$f"; grep -E '^(--- FAIL|FAIL)' "$f" | head -3; done
}

models() {
  M=${MODELS:-resnet18,resnet50,mobilenet_v2,efficientnet_b0,mobilenet_v3_large}
  D=/tmp/cnnc-models
  mkdir -p $D
  EB=${EXPORT_BATCHES:-1,8}
  RB=${RUN_BATCHES:-1 8 32}
  PYTHONUNBUFFERED=1 python3 bench/peers/torchvision_models.py export --models "$M" --batches $EB --dynamo "${DYNAMO-resnet18}" --out $D > "$OUT/export.log" 2>&1 || { echo "export failed"; tail -20 "$OUT/export.log"; }
  if [ -z "${NO_PEERS:-}" ]; then
    PYTHONUNBUFFERED=1 python3 bench/peers/torchvision_models.py peak > "$OUT/peak.jsonl" 2>&1
    PYTHONUNBUFFERED=1 python3 bench/peers/torchvision_models.py eager --models "$M" --batches 1,32 > "$OUT/eager.jsonl" 2>&1
  fi
  for m in ${M//,/ }; do
    for b in $RB; do
      $B/cnnc compile $D/$m.onnx --batch $b -o $D/${m}_b$b.ptx >> "$OUT/compile.log" 2>&1 || echo "compile $m b$b failed: $(tail -1 $OUT/compile.log)"
      exp=""
      [ -f $D/${m}_b${b}_output.npy ] && exp="--input $D/${m}_b${b}_input.npy --expect $D/${m}_b${b}_output.npy"
      $B/cnnc run $D/${m}_b$b.ptx $exp --iters 50 --json "$OUT/run_${m}_b$b.json" >> "$OUT/run.log" 2>&1 || echo "run $m b$b failed: $(tail -1 $OUT/run.log)"
    done
  done
  if [ -f $D/resnet18_dynamo.onnx ]; then
    $B/cnnc compile $D/resnet18_dynamo.onnx -o $D/resnet18_dynamo.ptx >> "$OUT/compile.log" 2>&1 &&
      $B/cnnc run $D/resnet18_dynamo.ptx --input $D/resnet18_b1_input.npy --expect $D/resnet18_b1_output.npy --json "$OUT/run_resnet18_dynamo_b1.json" >> "$OUT/run.log" 2>&1 || echo "dynamo resnet18 failed: $(tail -1 $OUT/run.log)"
  fi
  [ -f "$OUT/peak.jsonl" ] && cat "$OUT/peak.jsonl"
  [ -f "$OUT/eager.jsonl" ] && grep -h '"median_ms"' "$OUT/eager.jsonl" | tr -d '\n' | head -c 3000; echo
  # One file for all runs: the device returns at most 8 files.
  for f in "$OUT"/run_*.json; do python3 -c "import json; print(json.dumps(dict(json.load(open('$f')), name='$(basename $f .json)')))"; done > "$OUT/runs.jsonl"
  rm -f "$OUT"/run_*.json
  python3 -c "
import json
for l in open('$OUT/runs.jsonl'):
    r = json.loads(l); print(r['name'], r['batch'], r.get('rel_l2'), round(r['median_ms'], 3))"
}

# schedules: every GEMM-core schedule case under every tile, fp32 and fp16,
# against the interpreter.
schedules() {
  (cd "$B" && timeout 300 ./e2e.test -test.v -test.run 'TestGPUSchedules|TestGPUTensorCore|TestGPUWgmma' -test.timeout 290s) > "$OUT/test_schedules.log" 2>&1
  echo "schedules: exit $?; $(grep -E '^(--- |FAIL|ok|PASS)' "$OUT/test_schedules.log" | tr '\n' ' ')"
}

# tune_flag is --tune where TUNE is set and the batch is one of
# TUNE_BATCHES (default: every batch), else --tuned FILE where TUNED_DIR
# holds MODEL_bBATCH_PRECISION.tune.json.
tune_flag() { # model batch
  if [ -n "${TUNE:-}" ] && [[ " ${TUNE_BATCHES:-$2} " == *" $2 "* ]]; then echo --tune; return; fi
  local f=${TUNED_DIR:-/nonexistent}/$1_b$2_${PRECISION:-fp32}.tune.json
  [ -f "$f" ] && echo --tuned $f
}

# bench: calibrate, then cnnc bench (-O0 vs -O2) per model and batch, and
# -O2 outputs against PyTorch.
bench() {
  M=${MODELS:-mobilenet_v2,efficientnet_b0,resnet50}
  D=/tmp/cnnc-models
  mkdir -p $D
  PYTHONUNBUFFERED=1 python3 bench/peers/torchvision_models.py export --models "$M" --batches 1,8 --out $D > "$OUT/export.log" 2>&1 || { echo "export failed"; tail -5 "$OUT/export.log"; }
  $B/cnnc bench --calibrate -o "$OUT/calibration.json" 2>&1 | tee "$OUT/calibrate.log"
  CAL="$OUT/calibration.json"
  if [ -n "${FIT:-}" ]; then
    # A first pass measures every kernel; the cost model is fitted to it
    # and the reported pass runs with the fitted profile.
    mkdir -p /tmp/fitpass
    for m in ${M//,/ }; do for b in ${BENCH_BATCHES:-1 32}; do
      $B/cnnc bench $D/$m.onnx --batch $b --precision ${PRECISION:-fp32} --calibration "$CAL" --iters 20 --json /tmp/fitpass/${m}_b$b.json > /dev/null 2>&1 || echo "fit pass $m b$b failed"
    done; done
    $B/cnnc bench --fit /tmp/fitpass/*.json --calibration "$CAL" -o "$OUT/fitted.json" 2>&1 | tee "$OUT/fit.log"
    # The fit pass's reports, one per line, for refitting elsewhere.
    for f in /tmp/fitpass/*.json; do python3 -c "import json; print(json.dumps(json.load(open('$f'))))"; done > "$OUT/fitpass.jsonl"
    CAL="$OUT/fitted.json"
  fi
  P=${PRECISION:-fp32}
  PEERS_ARG=""
  [ -n "${PEERS_FILE:-}" ] && PEERS_ARG="--peers $PEERS_FILE"
  if [ -n "${PEERS:-}" ]; then
    PYTHONUNBUFFERED=1 python3 bench/peers/torchvision_models.py peers --models "$M" --batches "$(echo ${BENCH_BATCHES:-1 32} | tr ' ' ,)" \
      --precision $P --modes "${PEER_MODES:-eager,graph,reduce-overhead}" > "$OUT/peers.jsonl" 2>"$OUT/peers.log" || echo "peers failed: $(tail -2 $OUT/peers.log)"
    PEERS_ARG="--peers $OUT/peers.jsonl"
  fi
  : > "$OUT/bench.jsonl"; : > "$OUT/bench.md"
  for m in ${M//,/ }; do
    for b in ${BENCH_BATCHES:-1 32}; do
      $B/cnnc bench $D/$m.onnx --batch $b --precision $P --calibration "$CAL" $PEERS_ARG ${BASELINE:+--baseline $BASELINE} ${LAYOUT:+--layout $LAYOUT} $(tune_flag $m $b) --json /tmp/b.json --md /tmp/b.md > /tmp/b.log 2>&1 || { echo "bench $m b$b failed: $(tail -2 /tmp/b.log)"; }
      [ -f /tmp/b.json ] && python3 -c "import json; print(json.dumps(json.load(open('/tmp/b.json'))))" >> "$OUT/bench.jsonl"
      [ -f /tmp/b.md ] && cat /tmp/b.md >> "$OUT/bench.md"
      rm -f /tmp/b.json /tmp/b.md
    done
    for b in 1 8; do
      TOL=1e-4; [ "$P" = fp16 ] && TOL=1e-2
      $B/cnnc compile $D/$m.onnx --batch $b --precision $P --calibration "$CAL" -o $D/${m}_O2_b$b.ptx >> "$OUT/compile.log" 2>&1 &&
        $B/cnnc run $D/${m}_O2_b$b.ptx --input $D/${m}_b${b}_input.npy --expect $D/${m}_b${b}_output.npy --tol $TOL --iters 5 >> "$OUT/run.log" 2>&1 || echo "O2 $m b$b vs PyTorch failed: $(tail -1 $OUT/run.log)"
    done
  done
  grep -h "relative L2" "$OUT/run.log"
  python3 - "$OUT/bench.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    v0, v2 = r["variants"]
    print("%-18s b%-3d O0 %.3f/%.3f ms  O2 %.3f/%.3f ms  speedup %.2fx/%.2fx  util O2 %.1f%%  rho O0 %.2f O2 %.2f  pred O0 %+.0f%% O2 %+.0f%%  L2 %.1e" % (
        r["model"], r["batch"], v0["median_ms_launches"], v0["median_ms_graph"], v2["median_ms_launches"], v2["median_ms_graph"],
        r["speedup_launches"], r["speedup_graph"], 100 * v2["utilization_graph"], v0["spearman_predicted_vs_measured"], v2["spearman_predicted_vs_measured"],
        100 * (v0["predicted_ms"] / v0["median_ms_launches"] - 1), 100 * (v2["predicted_ms"] / v2["median_ms_launches"] - 1), v2["rel_l2_vs_interp"]))
    b = r.get("baseline")
    if b:
        print("    cudnn: %s" % (b["error"] if b.get("error") else "%.3f/%.3f ms, L2 %.1e vs interp, %.1e vs O2; cnnc O2 %.2fx its speed (graphs)" % (
            b["median_ms_launches"], b["median_ms_graph"], b["rel_l2_vs_interp"], b["rel_l2_vs_cnnc_O2"], b["cnnc_O2_speedup_graph"])))
    g = r.get("gemm_kernels")
    if g:
        print("    largest GEMM kernel %s: %.1f TFLOP/s, %.1f%% of the %s peak" % (g[0]["kernel"], g[0]["tflops"], 100 * g[0]["fraction_of_unit_peak"], g[0]["unit"]))
PY
}

# survey: the utilization survey over the torchvision CNNs.
survey() {
  M=${MODELS:-resnet18,resnet50,resnet101,mobilenet_v2,mobilenet_v3_large,efficientnet_b0,efficientnet_b3,regnet_y_400mf,densenet121,squeezenet1_1,shufflenet_v2_x1_0,mnasnet1_0,resnext50_32x4d}
  D=/tmp/cnnc-survey-models
  mkdir -p $D
  PYTHONUNBUFFERED=1 python3 bench/peers/torchvision_models.py export --models "$M" --batches 1 --out $D > "$OUT/export.log" 2>&1 || echo "export failed"
  $B/cnnc bench --calibrate -o "$OUT/calibration.json" > "$OUT/calibrate.log" 2>&1
  S=/tmp/cnnc-survey
  rm -rf $S
  # Under a deadline the survey stops in time to pack what it measured
  # (it rewrites its tables after every cell).
  timeout $(( ${DEADLINE:-$(( $(date +%s) + 100000 ))} - $(date +%s) - 15 )) $B/cnnc survey --models-dir $D --batch ${BATCHES:-1,32} --precision ${PRECISION:-fp32} --calibration "$OUT/calibration.json" --out $S 2>&1 | tee "$OUT/survey.log" | tail -25
  # The device returns at most 8 files: the tables and plots go packed.
  cp $S/survey.md "$OUT/" 2>/dev/null
  tar czf "$OUT/survey.tgz" -C /tmp cnnc-survey 2>/dev/null
}

# nas: the search-space study with the card's calibration.
nas() {
  $B/cnnc bench --calibrate -o "$OUT/calibration.json" > "$OUT/calibrate.log" 2>&1
  N=/tmp/cnnc-nas
  rm -rf $N && mkdir -p $N
  $B/cnnc nas --samples ${SAMPLES:-300} --measure ${MEASURE:-60} --calibration "$OUT/calibration.json" -o $N/nas.jsonl --kernels $N/nas_kernels.jsonl --plots $N 2>&1 | tee "$OUT/nas.log" | tail -12
  cp "$OUT/calibration.json" $N/ 2>/dev/null
  tar czf "$OUT/nas.tgz" -C /tmp cnnc-nas
}

# all: one device call's worth, each step under its own time limit (the
# call has 600 s): the GPU tests, the bench with the cuDNN baseline, the
# NAS study and the survey, every step's files packed.
all() {
  local start=$(date +%s)
  left() { echo $(( ${ALL_BUDGET:-570} - ($(date +%s) - start) )); }
  timeout 200 bash "$0" tests | tail -7
  (cd "$OUT" && tar czf tests.tgz test_*.log 2>/dev/null && rm -f test_*.log)
  [ $(left) -gt 200 ] && BASELINE=${BASELINE-cudnn} timeout $(( $(left) - 150 )) bash "$0" bench | tail -9
  (cd "$OUT" && tar czf bench.tgz bench.md run.log compile.log export.log calibrate.log 2>/dev/null; rm -f bench.md run.log compile.log export.log calibrate.log)
  [ $(left) -gt 120 ] && timeout $(( $(left) - 10 )) bash "$0" nas | tail -10
  echo "all: $(( $(date +%s) - start )) s"
}

# hopper: the wgmma core's cycle in one call: its GPU test, then
# ResNet-50 at batch 32 in fp16 tuned on the card (TUNE_ITERS runs a
# candidate), benched with the tuning and the kernel benchmark, and ncu on
# the stem and the three slowest other kernels.
hopper() {
  local D=/tmp/cnnc-models
  mkdir -p $D
  (PYTHONUNBUFFERED=1 python3 bench/peers/torchvision_models.py export --models resnet50 --batches 1 --out $D > "$OUT/export.log" 2>&1) &
  (cd "$B" && timeout 200 ./e2e.test -test.v -test.run 'TestGPUWgmma' -test.timeout 190s) > "$OUT/test_wgmma.log" 2>&1
  echo "TestGPUWgmma: exit $?; $(grep -E '^(--- |FAIL|ok|PASS)' "$OUT/test_wgmma.log" | tr '\n' ' ')"
  wait
  timeout 300 $B/cnnc tune $D/resnet50.onnx --batch 32 --precision fp16 --iters ${TUNE_ITERS:-10} -o "$OUT/resnet50_b32_fp16.tune.json" > "$OUT/tune.log" 2>&1
  echo "tune: exit $?; $(head -1 "$OUT/tune.log")"
  $B/cnnc bench $D/resnet50.onnx --batch 32 --precision fp16 --tuned "$OUT/resnet50_b32_fp16.tune.json" --kernels --iters 30 --json "$OUT/bench.json" > "$OUT/bench.md" 2>&1
  grep -E '^\| -O|Largest|roofline' "$OUT/bench.md"
  $B/cnnc compile $D/resnet50.onnx --batch 32 --precision fp16 --target sm_90a --tuned "$OUT/resnet50_b32_fp16.tune.json" -o /tmp/rn50.ptx > /dev/null 2>&1
  local names=$(python3 -c "
import json
ks = json.load(open('$OUT/bench.json'))['variants'][1]['kernels']
gemm = [k['kernel'] for k in sorted(ks, key=lambda k: -k['measured_us']) if '_tc' in k['kernel'] and 'conv7x7' not in k['kernel']][:3]
print('|'.join(['k001_'] + [n.split('_')[0] + '_' for n in gemm]))")
  timeout 200 ncu --kernel-name regex:"$names" --launch-count 4 --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section LaunchStats --section MemoryWorkloadAnalysis $B/cnnc run /tmp/rn50.ptx --iters 1 > "$OUT/ncu.txt" 2>&1
  echo "ncu ($names): exit $?"
}

# fp16: issue 5's checks in one call: the GPU conformance (fp32 -O0, -O2,
# -O2 channels last) and the tensor-core tests, then the fp16 bench of the
# four models at batch 1 and 32 with the cuDNN baseline.
fp16() {
  (cd "$B" && timeout 220 ./e2e.test -test.v -test.run 'TestGPUConformance|TestGPUTensorCore' -test.timeout 210s) > "$OUT/test_fp16.log" 2>&1
  echo "tests: exit $?; $(grep -E '^(--- FAIL|--- PASS|FAIL|ok|PASS|gpu conformance)' "$OUT/test_fp16.log" | tail -4 | tr '\n' ' ')"
  (cd "$OUT" && tar czf tests.tgz test_fp16.log && rm -f test_fp16.log)
  MODELS=${MODELS:-resnet18,resnet50,mobilenet_v2,efficientnet_b0} PRECISION=fp16 BASELINE=${BASELINE-cudnn} bench
}

# peers: PyTorch fp16 on the same models: eager and CUDA-graph replay
# everywhere, torch.compile (reduce-overhead) on the mobile nets at batch 1.
peers() {
  P=bench/peers/torchvision_models.py
  PYTHONUNBUFFERED=1 python3 $P peers --models resnet18,resnet50,mobilenet_v2,efficientnet_b0 --batches 1,32 --precision fp16 --modes eager,graph > "$OUT/peers.jsonl" 2> "$OUT/peers.log"
  PYTHONUNBUFFERED=1 python3 $P peers --models mobilenet_v2,efficientnet_b0 --batches 1 --precision fp16 --modes ${COMPILE_MODES:-reduce-overhead} >> "$OUT/peers.jsonl" 2>> "$OUT/peers.log"
  grep -h median_ms "$OUT/peers.jsonl" | cut -c1-200
}

# multi: on a host with four GPUs, one device call's worth run side by
# side, each step on its own GPU and quarter of the CPUs (so that launch
# timings do not contend), each writing into its own folder of $OUT:
# the fp32 bench with the cuDNN baseline (GPU 0), the survey (GPUs 1 and
# 2), then NAS and the schedule tests (GPU 3). Each folder comes back
# packed.
multi() {
  local n=$(nproc) q=$(( $(nproc) / 4 )) T=${MULTI_BUDGET:-560}
  run_on() { # gpus cpus name steps...
    local gpus=$1 cpus=$2 name=$3; shift 3
    local top=$OUT
    mkdir -p "$top/$name"
    ( export CUDA_VISIBLE_DEVICES=$gpus OUT="$top/$name"
      export DEADLINE=$(( $(date +%s) + T ))
      for step in "$@"; do timeout $(( DEADLINE - $(date +%s) )) taskset -c $cpus bash "$0" $step; done > "$top/$name/steps.log" 2>&1
      tar czf "$top/$name.tgz" -C "$top" "$name" && rm -rf "$top/$name" ) &
  }
  BASELINE=${BASELINE-cudnn} run_on 0 0-$((q-1)) bench bench
  run_on 1,2 $q-$((3*q-1)) survey survey
  run_on 3 $((3*q))-$((n-1)) nas nas schedules
  wait
  for name in bench survey nas; do tar xzf "$OUT/$name.tgz" -O "$name/steps.log" | tail -14; done
}

"$@"
