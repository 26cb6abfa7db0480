#!/usr/bin/env bash
# Issue 12's fleet figures on the 16-core GPU machine (CPU workers; no network, no nats-server
# installed there): a data-parallel grid with each entry's hardware ceiling (bare ONNX Runtime
# loops, bench/fleet-ceiling.ts), the fleet gateway against a direct server at batch 16, and a
# ~1 GB weights version to 4 fleet workers.
#
#   scripts/device-fleet-bench.sh OUT_DIR [NATS_SERVER_BINARY]
#
# Needs `node` on PATH and node_modules in place. The gateway and propagation parts need Debian's
# nats-server (2.9), carried as the git-ignored .device-nats/nats-server (apt-get download
# nats-server; dpkg -x; see docs/fleet.md) unless given as the second argument or NATS_SERVER;
# PARTS=dp runs the grid alone, without it.
# Environment (defaults in brackets):
#   PARTS        parts to run, in order ["dp gateway propagation"]
#   GRID         data-parallel entries WORKERSxTHREADS[+spin|+session|+all|+pin] [1x4,2x4,4x4]
#                (bench/fleet-grid.ts; the first is the baseline; 'pin' adds pinned bare loops)
#   CALLS        concurrent calls of 16 samples per worker [4]
#   CEILING_SECONDS  seconds each set of bare loops runs; 0 skips the ceiling [2]
#   THREADS, FLEET_WORKERS, HIDDEN, LAYERS, REPS  the gateway and propagation parts [4, 4, 2048, 10, 3]
#   DP_REPS      repetitions of each grid entry [REPS]
#   LIMIT_FACTOR multiplies each step's deadline [1]; DP_LIMIT the grid's deadline in seconds [150]
# Grid only, ~2.5 minutes on the GPU machine's 16 cores:
#   PARTS=dp GRID=1x4,2x4,4x4+pin,4x4+all,8x2,16x1,1x4+spin,4x4+spin,1x4+session,4x4+session \
#     CALLS=2 DP_REPS=2 CEILING_SECONDS=1.5 scripts/device-fleet-bench.sh OUT_DIR
# Small trial (a loaded 2-core machine):
#   PARTS=dp GRID=1x1,2x1+pin,2x1+all CALLS=1 DP_REPS=1 CEILING_SECONDS=0.5 LIMIT_FACTOR=2 \
#     scripts/device-fleet-bench.sh /tmp/out
#   WORKERS=1,2 THREADS=1 FLEET_WORKERS=2 HIDDEN=256 LAYERS=2 REPS=1 LIMIT_FACTOR=4 GRID=1x1,2x1 \
#     scripts/device-fleet-bench.sh /tmp/out
# Writes OUT_DIR/fleet-*.json (bench/fleet.ts results) and OUT_DIR/log.txt; exits non-zero, saying
# why, when anything is missing or any step fails or overruns (the log keeps what a step printed).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "device-fleet-bench: $*" >&2; exit 1; }

OUT=${1:-}
[ -n "$OUT" ] || die "usage: scripts/device-fleet-bench.sh OUT_DIR [NATS_SERVER_BINARY]"
NATS_SERVER=${2:-${NATS_SERVER:-$PWD/.device-nats/nats-server}}
PARTS=${PARTS:-dp gateway propagation}
GRID=${GRID:-1x4,2x4,4x4}
CALLS=${CALLS:-4}
CEILING_SECONDS=${CEILING_SECONDS:-2}
THREADS=${THREADS:-4}
FLEET_WORKERS=${FLEET_WORKERS:-4}
HIDDEN=${HIDDEN:-2048}   # hidden 2048, 10 layers: 1.01 GB of transformer weights (f32)
LAYERS=${LAYERS:-10}
REPS=${REPS:-3}
DP_REPS=${DP_REPS:-$REPS}
LIMIT_FACTOR=${LIMIT_FACTOR:-1}   # multiplies each step's deadline (a small trial on a loaded 2-core machine: 4)
DP_LIMIT=${DP_LIMIT:-150}

for part in $PARTS; do
  case $part in dp | gateway | propagation) ;; *) die "PARTS: unknown part '$part' (dp, gateway, propagation)" ;; esac
done
needs_nats() { [[ " $PARTS " == *" gateway "* || " $PARTS " == *" propagation "* ]]; }

command -v node >/dev/null || die "node is not on PATH"
command -v timeout >/dev/null || die "timeout (coreutils) is not on PATH"
[ -d node_modules/onnxruntime-node ] && [ -d node_modules/tsx ] || die "node_modules is missing or incomplete in $PWD (npm ci first)"
if needs_nats; then
  [ -d node_modules/@nats-io/obj ] || die "node_modules lacks @nats-io/obj in $PWD (npm ci first)"
  [ -x "$NATS_SERVER" ] || die "no nats-server binary at $NATS_SERVER (carry .device-nats/nats-server, or pass its path; PARTS=dp needs none)"
  "$NATS_SERVER" --version >/dev/null 2>&1 || die "$NATS_SERVER does not run on this machine: $("$NATS_SERVER" --version 2>&1 | head -1)"
  export NATS_SERVER
fi
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/log.txt"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
say "device-fleet-bench $(date -u +%FT%TZ) on $(nproc) cores, node $(node --version)$(needs_nats && echo ", $("$NATS_SERVER" --version)")"
say "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); parts: $PARTS"
command -v lscpu >/dev/null && lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node\(s\)|L3 cache|CPU max MHz)' | tee -a "$LOG" || true

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# step NAME SECONDS COMMAND...: runs it with a deadline, logging its output. A step that fails or
# overruns is recorded, and the script goes on to copy what was written, then exits non-zero.
FAILED=()
step() {
  local name=$1 limit
  limit=$(awk -v s="$2" -v f="$LIMIT_FACTOR" 'BEGIN { printf "%d", s * f }')
  shift 2
  say "== $name (limit ${limit}s): $*"
  local start=$SECONDS
  if ! timeout "$limit" "$@" 2>&1 | tee -a "$LOG"; then
    say "== $name FAILED or ran past ${limit}s"
    FAILED+=("$name")
    return 1
  fi
  say "== $name done in $((SECONDS - start))s"
}

touch "$WORK/started"
results=()
for part in $PARTS; do
  case $part in
    dp)
      # The grid's results file is rewritten after each entry: an overrun keeps the entries done.
      step "data parallel grid ${GRID}" "$DP_LIMIT" \
        node bin/run-ts.js bench/fleet.ts --part dp --grid "$GRID" --calls-per-worker "$CALLS" --batch 16 --reps "$DP_REPS" \
        --ceiling-seconds "$CEILING_SECONDS" --skip-start --name fleet-dp-grid || true
      results+=(bench/results/fleet-dp-grid.json) ;;
    gateway)
      step "gateway vs direct server, batch 16" 60 \
        node bin/run-ts.js bench/fleet.ts --part gateway --workers 1 --fleet-workers 1 --threads "$THREADS" --batch 16 --reps "$((REPS + 2))" || true
      results+=("bench/results/fleet-gateway-1x${THREADS}-fleet1.json") ;;
    propagation)
      if step "dummy model ${HIDDEN}x${LAYERS}" 60 \
        node bin/omni-worker.js dummy-model --out "$WORK/model" --hidden "$HIDDEN" --layers "$LAYERS"; then
        step "weights propagation to ${FLEET_WORKERS} workers" 120 \
          node bin/run-ts.js bench/fleet.ts --part propagation --workers 1 --fleet-workers "$FLEET_WORKERS" --threads "$THREADS" --model "$WORK/model" --prop-reps "$REPS" || true
      fi
      results+=("bench/results/fleet-propagation-1x${THREADS}-fleet${FLEET_WORKERS}.json") ;;
  esac
done

# Whatever was written fresh is copied, failed steps or not; then the failures are named.
fresh=()
for r in "${results[@]}"; do
  if [ -f "$r" ] && [ "$r" -nt "$WORK/started" ]; then fresh+=("$r"); else say "no fresh result file $r"; fi
done
[ ${#fresh[@]} -eq 0 ] || cp "${fresh[@]}" "$OUT/"
say "results in $OUT: $(cd "$OUT" && ls fleet-*.json 2>/dev/null | tr '\n' ' ')"
[ ${#FAILED[@]} -eq 0 ] || die "failed or overran: ${FAILED[*]} (log: $LOG)"
[ ${#fresh[@]} -eq ${#results[@]} ] || die "some result files are missing (above)"
