#!/bin/bash
# Two settings of the whole run (run.sh: its own server, trainer and figures each) side by side on
# one GPU, for a comparison in one device call. The two share the GPU and the CPU cores, so each
# runs slower than alone, and the throughput figures of the two overlap (not a clean measure).
#   bash examples/flow-grpo/scripts/side-by-side.sh OUT "TRAIN_ARGS A" "TRAIN_ARGS B"
# OUT/a and OUT/b get each run's files; BUDGET1, BUDGET2 and WORKERS pass through to run.sh.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: side-by-side.sh OUT "TRAIN_ARGS A" "TRAIN_ARGS B"}
mkdir -p "$OUT/a" "$OUT/b"
PORT=8001 TRAIN_ARGS="$2" bash "$HERE/run.sh" "$OUT/a" > "$OUT/a/run.txt" 2>&1 &
a=$!
PORT=8002 TRAIN_ARGS="$3" bash "$HERE/run.sh" "$OUT/b" > "$OUT/b/run.txt" 2>&1 &
b=$!
wait $a; ra=$?
wait $b; rb=$?
echo "a ($2): exit $ra; b ($3): exit $rb"
[ $ra = 0 ] && [ $rb = 0 ]
