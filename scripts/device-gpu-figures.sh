#!/usr/bin/env bash
# Issue 10's remaining H200 figures in one call (BENCHMARKS.md, "GPU execution at scale"):
#   core          the embedded model at batch 1/4/16, thread worker vs the bare ONNX Runtime loop,
#                 both with the weights in the session (bench/core.ts)           -> core.json
#   lora-small    a LoRA switch between requests and an adapter's first use, embedded model, with
#                 the spareSessions-1 eviction check (bench/lora-switch.ts)      -> lora-switch-embedded.json
#   update-half   a full weight update of dummy HIDDEN x LAYERS in float16, bytes in float16 and
#                 float32 (bench/weight-scale.ts)                                -> weight-scale-f16.json
#   update-sleep  the same in float32, then sleep level 1 and 2 with nvidia-smi and wake times
#                                                                                -> weight-scale-f32.json
#   lora-large    the LoRA switch on dummy HIDDEN x LAYERS in float16            -> lora-switch-dummy.json
# and log.txt, all under OUT. On the GPU machine:
#   source /tmp/omni/env.sh && bash /tmp/omni/link.sh && bash scripts/device-gpu-figures.sh "$OUT"
# Each stage runs under `timeout`, capped by its own limit and by what is left of TOTAL seconds
# (220: the call has 4 minutes); a stage with under 15 s left is skipped, and a stage that fails
# or runs out leaves the others' results. Settings, by environment: DEVICE (cuda), HIDDEN (2048),
# LAYERS (24), HEADS (16), IMAGE (64), CORE_REPS (15), LORA_REPS (6), UPDATE_REPS (2), TOTAL (220),
# STAGES (all five, in the order above). A check on the CPU at small sizes:
#   DEVICE=cpu HIDDEN=256 LAYERS=2 HEADS=4 IMAGE=16 CORE_REPS=1 LORA_REPS=2 TOTAL=600 bash scripts/device-gpu-figures.sh /tmp/gpu-figures
set -uo pipefail
OUT=${1:?usage: scripts/device-gpu-figures.sh OUT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=${DEVICE:-cuda}
HIDDEN=${HIDDEN:-2048}
LAYERS=${LAYERS:-24}
HEADS=${HEADS:-16}
IMAGE=${IMAGE:-64}
CORE_REPS=${CORE_REPS:-15}
LORA_REPS=${LORA_REPS:-6}
UPDATE_REPS=${UPDATE_REPS:-2}
TOTAL=${TOTAL:-220}
STAGES=${STAGES:-"core lora-small update-half update-sleep lora-large"}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
say() { echo "== $* ($(elapsed) s)" | tee -a "$LOG"; }
failed=0
DUMMY=(--hidden "$HIDDEN" --layers "$LAYERS" --heads "$HEADS" --image "$IMAGE")

# stage NAME CAP COMMAND...: runs COMMAND (from the repository root) under the smaller of CAP and
# what TOTAL leaves (less 10 s for timeout's kill grace and the last lines).
stage() {
  local name=$1 cap=$2; shift 2
  case " $STAGES " in *" $name "*) ;; *) return 0 ;; esac
  local left=$(( TOTAL - $(elapsed) - 10 ))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 15 ]; then failed=1; say "$name: skipped, ${left} s left of TOTAL=${TOTAL}"; return 0; fi
  say "$name (cap ${cap} s): $*"
  (cd "$ROOT" && timeout -k 5 "$cap" "$@") 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { failed=1; say "$name: exited $rc (124: over its ${cap} s cap)"; }
}

say "device $DEVICE: $(nvidia-smi -L 2>/dev/null | head -1); dummy ${HIDDEN}x${LAYERS}; stages: $STAGES"
nvidia-smi --query-gpu=memory.used,memory.total --format=csv 2>/dev/null | tee -a "$LOG"
stage core 70 node bin/run-ts.js bench/core.ts --device "$DEVICE" --reps "$CORE_REPS" --out "$OUT/core.json"
stage lora-small 40 node bin/run-ts.js bench/lora-switch.ts --device "$DEVICE" --reps "$LORA_REPS" --evict-check --out "$OUT/lora-switch-embedded.json"
stage update-half 75 node bin/run-ts.js bench/weight-scale.ts --device "$DEVICE" "${DUMMY[@]}" --dtype float16 --reps "$UPDATE_REPS" --out "$OUT/weight-scale-f16.json"
stage update-sleep 75 node bin/run-ts.js bench/weight-scale.ts --device "$DEVICE" "${DUMMY[@]}" --dtype float32 --reps "$UPDATE_REPS" --sleep --out "$OUT/weight-scale-f32.json"
stage lora-large 60 node bin/run-ts.js bench/lora-switch.ts --device "$DEVICE" "${DUMMY[@]}" --dtype float16 --reps "$LORA_REPS" --new-scales 2 --out "$OUT/lora-switch-dummy.json"
say "done"
exit $failed
