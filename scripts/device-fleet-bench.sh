#!/usr/bin/env bash
# Issue 12's fleet figures on the 16-core GPU machine (CPU workers; no network, no nats-server
# installed there): data-parallel scaling 1 -> 2 -> 4 workers at 4 threads each, the fleet
# gateway against a direct server at batch 16, and a ~1 GB weights version to 4 fleet workers.
#
#   scripts/device-fleet-bench.sh OUT_DIR [NATS_SERVER_BINARY]
#
# Needs `node` on PATH and node_modules in place. The server binary is Debian's nats-server
# (2.9), carried as the git-ignored .device-nats/nats-server (apt-get download nats-server;
# dpkg -x; see docs/fleet.md) unless given as the second argument or NATS_SERVER.
# Small trial: WORKERS=1,2 THREADS=1 FLEET_WORKERS=2 HIDDEN=256 LAYERS=2 REPS=1 LIMIT_FACTOR=4 \
#   scripts/device-fleet-bench.sh /tmp/out
# Writes OUT_DIR/fleet-*.json (bench/fleet.ts results) and OUT_DIR/log.txt; exits non-zero, saying
# why, when anything is missing or any step fails or overruns.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "device-fleet-bench: $*" >&2; exit 1; }

OUT=${1:-}
[ -n "$OUT" ] || die "usage: scripts/device-fleet-bench.sh OUT_DIR [NATS_SERVER_BINARY]"
NATS_SERVER=${2:-${NATS_SERVER:-$PWD/.device-nats/nats-server}}
WORKERS=${WORKERS:-1,2,4}
THREADS=${THREADS:-4}
FLEET_WORKERS=${FLEET_WORKERS:-4}
HIDDEN=${HIDDEN:-2048}   # hidden 2048, 10 layers: 1.01 GB of transformer weights (f32)
LAYERS=${LAYERS:-10}
REPS=${REPS:-3}
LIMIT_FACTOR=${LIMIT_FACTOR:-1}   # multiplies each step's deadline (a small trial on a loaded 2-core machine: 4)

command -v node >/dev/null || die "node is not on PATH"
[ -d node_modules/@nats-io/obj ] && [ -d node_modules/tsx ] || die "node_modules is missing or incomplete in $PWD (npm ci first)"
[ -x "$NATS_SERVER" ] || die "no nats-server binary at $NATS_SERVER (carry .device-nats/nats-server, or pass its path)"
"$NATS_SERVER" --version >/dev/null 2>&1 || die "$NATS_SERVER does not run on this machine: $("$NATS_SERVER" --version 2>&1 | head -1)"
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
export NATS_SERVER
LOG="$OUT/log.txt"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
say "device-fleet-bench $(date -u +%FT%TZ) on $(nproc) cores, node $(node --version), $("$NATS_SERVER" --version)"
say "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# step NAME SECONDS COMMAND...: runs it with a deadline, logging its output; fails the script.
step() {
  local name=$1 limit=$(($2 * LIMIT_FACTOR))
  shift 2
  say "== $name (limit ${limit}s): $*"
  local start=$SECONDS
  if ! timeout "$limit" "$@" 2>&1 | tee -a "$LOG"; then
    die "step '$name' failed or ran past ${limit}s (log: $LOG)"
  fi
  say "== $name done in $((SECONDS - start))s"
}

touch "$WORK/started"
step "data parallel ${WORKERS} x ${THREADS} threads" 120 \
  node bin/run-ts.js bench/fleet.ts --part dp --workers "$WORKERS" --threads "$THREADS" --batch 16 --reps "$REPS"
step "gateway vs direct server, batch 16" 60 \
  node bin/run-ts.js bench/fleet.ts --part gateway --workers 1 --fleet-workers 1 --threads "$THREADS" --batch 16 --reps "$((REPS + 2))"
step "dummy model ${HIDDEN}x${LAYERS}" 60 \
  node bin/omni-worker.js dummy-model --out "$WORK/model" --hidden "$HIDDEN" --layers "$LAYERS"
step "weights propagation to ${FLEET_WORKERS} workers" 120 \
  node bin/run-ts.js bench/fleet.ts --part propagation --workers 1 --fleet-workers "$FLEET_WORKERS" --threads "$THREADS" --model "$WORK/model" --prop-reps "$REPS"

results=("bench/results/fleet-dp-${WORKERS//,/-}x${THREADS}.json" "bench/results/fleet-gateway-1x${THREADS}-fleet1.json"
  "bench/results/fleet-propagation-1x${THREADS}-fleet${FLEET_WORKERS}.json")
for r in "${results[@]}"; do
  [ "$r" -nt "$WORK/started" ] || die "no fresh result file $r"
done
cp "${results[@]}" "$OUT/"
say "results in $OUT: $(cd "$OUT" && ls fleet-*.json | tr '\n' ' ')"
