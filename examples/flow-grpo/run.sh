#!/usr/bin/env bash
# Flow-GRPO end to end on the GPU machine, one command (docs/flow-grpo.md):
#   bash examples/flow-grpo/run.sh [OUT]          (OUT: examples/flow-grpo/results/run by default)
# Serves the embedded model with `omni-worker serve` on CUDA, trains in two phases (the second
# resumes from the first one's checkpoint), then measures throughput against pure PyTorch, draws
# the before/after grids and the curves. Needs Node.js with this checkout's node_modules and the
# CUDA provider (`npx omni-worker setup cuda`), and python3 with torch, onnx, numpy, matplotlib.
# Env: BUDGET1, BUDGET2 (training seconds per phase), OMNI_FLOW_GRPO_DEVICE=cpu for a smoke run,
# TRAIN_ARGS (extra trainer flags), PORT, WORKERS (data-parallel workers sharing the device; the
# config's own `dataParallelSize` when unset: scripts/probe-workers.sh measures the choice).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/examples/flow-grpo/results/run}
DEVICE=${OMNI_FLOW_GRPO_DEVICE:-cuda}
PORT=${PORT:-8000}
URL=http://127.0.0.1:$PORT
export PYTHONPATH=$ROOT/python:$ROOT/clients/python:$ROOT/examples/flow-grpo${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
CONFIG=$ROOT/examples/flow-grpo/worker-$DEVICE.yaml
if [ -n "${WORKERS:-}" ]; then
  { grep -v '^dataParallelSize:' "$CONFIG"; echo "dataParallelSize: $WORKERS"; } > "$OUT/worker.yaml"
  CONFIG=$OUT/worker.yaml
fi

node "$ROOT/bin/omni-worker.js" serve --config "$CONFIG" --port "$PORT" > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 120); do grep -q "serving on" "$OUT/serve.log" && break; kill -0 $SERVER || { cat "$OUT/serve.log"; exit 1; }; sleep 0.5; done
grep -q "serving on" "$OUT/serve.log" || { echo "serve did not start" >&2; cat "$OUT/serve.log"; exit 1; }

TRAIN="python3 -m flow_grpo.train --url $URL --out $OUT --device $DEVICE --steps 100000 ${TRAIN_ARGS:-}"
T0=$(date +%s)
$TRAIN --time-budget "${BUDGET1:-225}" 2>&1 | tee "$OUT/train-phase1.log"
$TRAIN --time-budget "${BUDGET2:-225}" --resume "$OUT/checkpoint.pt" --final 2>&1 | tee "$OUT/train-phase2.log"
echo "training wall time (both phases, evaluations included): $(( $(date +%s) - T0 )) s" | tee "$OUT/wall.txt"
python3 -m flow_grpo.figures --url "$URL" --model "$ROOT/models/shapes-dit" --out "$OUT" \
  --trained "$OUT/transformer-flow-grpo.safetensors" --device "$DEVICE" ${FIGURE_ARGS:-} 2>&1 | tee "$OUT/figures.log"
python3 -m flow_grpo.plots "$OUT"
rm -f "$OUT/checkpoint.pt"   # 60 MB with the optimizer state: not a result
