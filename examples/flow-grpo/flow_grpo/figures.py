"""After training (PyTorch side, GPU machine): rollout throughput of the worker against the same
rollouts in pure PyTorch, and the before/after sample grids.

    python3 -m flow_grpo.figures --url URL --out DIR --trained DIR/transformer-flow-grpo.safetensors

Throughput: one process, the same batch (prompts x G samples, SDE window, log-probs, latents,
CFG 4.5, 10 steps, float32 on both sides, TF32 off), worker (HTTP, CUDA) and PyTorch alternated,
one warm-up each, medians. Grids: the same held-out prompts and seeds (ODE), start and trained
weights, both through the worker.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

import omni_worker as ow
from omni_ref.png import grid, write_png

from .bookkeeping import rollout_requests
from .evaluation import sample_images
from .policy import load_transformer
from .prompts import read_prompt_file
from .torch_engine import TorchEngine

GRID_SEED = 9_000_000


def throughput(client, engine, prompts, group, reps, sync):
    sde = {"type": "sde", "noiseLevel": 0.7, "window": {"size": 2, "range": [0, 4]}}
    reqs = rollout_requests(prompts, group, 123, sde)
    times = {"worker": [], "pytorch": []}
    for rep in range(reps + 1):
        for name, eng in (("worker", client), ("pytorch", engine)):
            t0 = time.perf_counter()
            eng.generate(reqs)
            sync()
            if rep:
                times[name].append(time.perf_counter() - t0)
    n = len(prompts) * group
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"samples": n, "reps": reps, "seconds": times,
            "images_per_s": {k: n / v for k, v in med.items()},
            "worker_over_pytorch": med["pytorch"] / med["worker"]}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--trained", required=True)
    ap.add_argument("--prompts-per-step", type=int, default=32)
    ap.add_argument("--group", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    client = ow.Client(a.url, return_type="numpy")
    heldout = read_prompt_file(os.path.join(a.out, "heldout_prompts.txt"))
    # start weights back on the worker: the grid "before" and the throughput run
    start = {k: v.numpy() for k, v in load_transformer(a.model).state_dict().items()}
    client.update_weights(start)
    engine = TorchEngine(a.model, load_transformer(a.model).to(dev), dev)
    res = throughput(client, engine, heldout[: a.prompts_per_step], a.group, a.reps, sync)
    print("throughput", json.dumps(res), flush=True)
    prompts = heldout[:8]
    before = sample_images(client, prompts, 8, GRID_SEED)
    client.update_weights(ow.load_file(a.trained, "numpy"))
    after = sample_images(client, prompts, 8, GRID_SEED)
    write_png(os.path.join(a.out, "grid-before.png"), grid(before, 8, scale=3))
    write_png(os.path.join(a.out, "grid-after.png"), grid(after, 8, scale=3))
    with open(os.path.join(a.out, "grid_prompts.txt"), "w") as f:
        f.write("\n".join(prompts) + "\n")
    with open(os.path.join(a.out, "throughput.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
