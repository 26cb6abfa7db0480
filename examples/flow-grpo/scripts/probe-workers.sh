#!/bin/bash
# Probe on the GPU machine: the example's per-step worker cost (one 512-sample SDE rollout; sleep,
# weights to the sleeping worker, wake) with 1, 2 and 4 data-parallel workers sharing the one GPU
# (`dataParallelSize`): each worker has its own inference thread, so one worker's host path
# (noise, SDE step, CFG) overlaps another's session.run. Writes $OUT/probe-workers.json.
#   bash examples/flow-grpo/scripts/probe-workers.sh OUT [SIZES]   (SIZES: "1 2 4" by default)
# A CPU smoke run: OMNI_FLOW_GRPO_DEVICE=cpu PROBE_ARGS="--prompts 2 --group 2 --reps 1" ... OUT "1 2"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${1:?usage: probe-workers.sh OUT [SIZES]}
SIZES=${2:-1 2 4}
DEVICE=${OMNI_FLOW_GRPO_DEVICE:-cuda}
PORT=${PORT:-8010}
export PYTHONPATH=$ROOT/python:$ROOT/clients/python:$ROOT/examples/flow-grpo${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
echo "[" > "$OUT/probe-workers.json"
first=1
for n in $SIZES; do
  cfg=$OUT/worker-dp$n.yaml
  { cat "$ROOT/examples/flow-grpo/worker-$DEVICE.yaml"; echo "dataParallelSize: $n"; } > "$cfg"
  node "$ROOT/bin/omni-worker.js" serve --config "$cfg" --port "$PORT" > "$OUT/serve-dp$n.log" 2>&1 &
  server=$!
  for _ in $(seq 240); do grep -q "serving on" "$OUT/serve-dp$n.log" && break; kill -0 $server || break; sleep 0.25; done
  [ $first = 1 ] || echo "," >> "$OUT/probe-workers.json"; first=0
  python3 -m flow_grpo.worker_cost --url "http://127.0.0.1:$PORT" --workers "$n" ${PROBE_ARGS:-} >> "$OUT/probe-workers.json"
  kill -TERM $server; wait $server || true
done
echo "]" >> "$OUT/probe-workers.json"
cat "$OUT/probe-workers.json"
