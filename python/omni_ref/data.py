"""Dataset building: scenes rendered in parallel (multiprocessing), captions tokenised."""
from __future__ import annotations

import os
from multiprocessing import Pool

import numpy as np

from .scenes import captions, render, sample_scenes, slot_labels
from .tokenizer import Tokenizer

CHUNK = 4096


def _chunk(args):
    seed, n, per_scene = args
    sc = sample_scenes(n, seed)
    imgs = render(sc)
    caps = captions(sc, seed + 7919, per_scene=per_scene)
    s_shape, s_color, bg = slot_labels(sc)
    tok = Tokenizer.default()
    ids = np.stack([tok(c) for c in caps])  # [n, per_scene, L]
    return imgs, ids, s_shape, s_color, bg


def build(n: int, seed: int, per_scene: int = 4, workers: int | None = None) -> dict:
    """n scenes from chunk seeds seed*100003 + k (deterministic for any worker count)."""
    jobs = []
    for k, s0 in enumerate(range(0, n, CHUNK)):
        jobs.append((seed * 100003 + k, min(CHUNK, n - s0), per_scene))
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1:
        with Pool(workers) as pool:
            parts = pool.map(_chunk, jobs)
    else:
        parts = [_chunk(j) for j in jobs]
    keys = ["images", "ids", "slot_shape", "slot_color", "bg"]
    return {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(keys)}
