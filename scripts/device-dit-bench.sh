#!/usr/bin/env bash
# Issue 10 item 6 on the GPU machine, in one call: python/omni_ref's DiT (dim 1152, heads 16,
# 64x64x3, patch 2) at depth 14 and 28, 8 images with CFG, PyTorch against the worker, same model
# and batch (BENCHMARKS.md, "The DiT against PyTorch"). Per depth: `omni_ref.bench_dit` writes the
# model folders and times PyTorch (float32, bf16 autocast eager, bf16 weights, bf16 autocast +
# torch.compile), then bench/dit-vs-torch.ts times the worker on each folder and prints ratios.
# Results under OUT: log.txt, torch-d<depth>.json, dit-d<depth>.json.
#   source /tmp/omni/env.sh && bash /tmp/omni/link.sh && bash scripts/device-dit-bench.sh "$OUT"
# Each stage has a time cap (7.5 minutes in all at most; about 5 expected),
# and a stage that fails or runs out leaves the others' results. Settings, by environment:
#   DEPTHS ("14 28"); PRECISIONS_<depth> (14: float32,float16,bfloat16; else float16,bfloat16: a
#   float32 folder of depth 28 is 3 GB more to write and load); DEVICE (cuda); IMAGES (8); REPS
#   (3, worker); PYTHON (python3); DIT_ARGS (more bench_dit arguments); WORK (/tmp/dit-bench);
#   PY_CAP_<depth> (seconds for the PyTorch side: 140 at depth 14, else 190: torch.compile of depth
#   28 is the longest stage) and NODE_CAP (60, each depth's worker side). A check on the CPU at a tiny size:
#   DEVICE=cpu DEPTHS=1 IMAGES=2 REPS=1 DIT_ARGS="--dim 64 --heads 4 --image 16 --reps 2 --warmup 1" bash scripts/device-dit-bench.sh /tmp/dit-out
#   A precision with "-fused" (PRECISIONS_14=float16-fused,float16) adds the graph with ONNX Runtime's fused
#   attention and GELU (python/omni_ref/dit_onnx.py).
set -uo pipefail
OUT=${1:?usage: scripts/device-dit-bench.sh OUT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPTHS=${DEPTHS:-"14 28"}
DEVICE=${DEVICE:-cuda}
IMAGES=${IMAGES:-8}
REPS=${REPS:-3}
DIT_ARGS=${DIT_ARGS:-}
WORK=${WORK:-/tmp/dit-bench}
PYTHON=${PYTHON:-python3}
NODE_CAP=${NODE_CAP:-60}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/log.txt"
start=$(date +%s)
say() { echo "== $* ($(( $(date +%s) - start )) s)" | tee -a "$LOG"; }
failed=0

say "device $DEVICE: $(nvidia-smi -L 2>/dev/null | head -1); depths $DEPTHS; $IMAGES images with CFG"
for depth in $DEPTHS; do
  var="PRECISIONS_$depth"
  default=float16,bfloat16; [ "$depth" = 14 ] && default=float32,float16,bfloat16
  precisions=${!var:-$default}
  cap="PY_CAP_$depth"; default_cap=190; [ "$depth" = 14 ] && default_cap=140
  py_cap=${!cap:-$default_cap}
  dir="$WORK/d$depth"
  rm -rf "$dir"
  say "depth $depth: PyTorch, folders $precisions"
  # shellcheck disable=SC2086 # DIT_ARGS is a list of arguments
  (cd "$ROOT/python" && timeout -k 10 "$py_cap" "$PYTHON" -m omni_ref.bench_dit --depth "$depth" --out "$dir" \
    --folders "$precisions" --device "$DEVICE" $DIT_ARGS) 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}; [ "$rc" = 0 ] || { failed=1; say "depth $depth: PyTorch side exited $rc (124: over its ${py_cap} s cap)"; }
  cp "$dir/torch.json" "$OUT/torch-d$depth.json" 2>/dev/null
  say "depth $depth: worker"
  (cd "$ROOT" && timeout -k 10 "$NODE_CAP" node bin/run-ts.js bench/dit-vs-torch.ts --dir "$dir" --device "$DEVICE" \
    --images "$IMAGES" --reps "$REPS" --json "$OUT/dit-d$depth.json") 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}; [ "$rc" = 0 ] || { failed=1; say "depth $depth: worker side exited $rc (124: over its ${NODE_CAP} s cap)"; }
  rm -rf "$dir"
done
say "done"
exit $failed
