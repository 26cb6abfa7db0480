"""The worker's share of one training step, measured alone (no PyTorch): the 512-sample SDE
rollout, and the weight cycle (sleep, the whole transformer to the sleeping worker, wake).
Prints one JSON object. Used by scripts/probe-workers.sh to choose `dataParallelSize`.

    python3 -m flow_grpo.worker_cost --url URL [--workers N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import omni_worker as ow

from .bookkeeping import rollout_requests
from .prompts import split_prompts

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def timed(fn, reps):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--workers", type=int, default=1, help="the server's dataParallelSize (recorded only)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--group", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--window-range", type=int, nargs=2, default=[0, 6], help="as train.py's")
    ap.add_argument("--weights", default=os.path.join(ROOT, "models", "shapes-dit", "transformer.safetensors"),
                    help="the transformer weights sent each cycle (the served model's)")
    a = ap.parse_args(argv)
    client = ow.Client(a.url, return_type="numpy")
    weights = ow.load_file(a.weights, "numpy")
    prompts = split_prompts(64, seed=0)[0][: a.prompts]
    sde = {"type": "sde", "noiseLevel": 0.7, "window": {"size": 2, "range": list(a.window_range)}}
    requests = rollout_requests(prompts, a.group, 1_000_000, sde)

    def cycle():
        client.sleep(level=1)
        client.update_weights(weights)
        client.wake_up()

    rollout = timed(lambda: client.generate(requests), a.reps)
    weights_cycle = timed(cycle, a.reps)
    med_r, med_c = statistics.median(rollout), statistics.median(weights_cycle)
    result = {"workers": a.workers, "samples": len(prompts) * a.group, "rollout_s": rollout, "cycle_s": weights_cycle,
              "median": {"rollout": med_r, "cycle": med_c, "sum": med_r + med_c}}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
