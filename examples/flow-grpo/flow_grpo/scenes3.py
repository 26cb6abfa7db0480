"""Scenes of one to three objects: the renders that check the reward classifier on what the task
asks for (the generator never saw three objects; the reward model must read them). Objects sit in distinct slots
(three objects: three corners, as the task's prompts place them), distinct colours; rendering
and labels are omni_ref.scenes' own (`render`, `slot_labels` take any number of objects).
"""
from __future__ import annotations

import numpy as np

from omni_ref.scenes import BACKGROUNDS, COLORS, POSITION_CENTERS, SIZE_RADIUS, SIZES, render, slot_labels  # noqa: F401 (render, slot_labels take any object count)

MAX_OBJECTS = 3


def sample_scenes(n: int, seed: int, p_objects=(0.3, 0.3, 0.4)) -> dict:
    """n scenes; arrays [n, 3] per object (unused objects: shape -1), bg [n], n_obj [n]."""
    rng = np.random.default_rng(seed)
    n_obj = rng.choice([1, 2, 3], size=n, p=p_objects)
    K = MAX_OBJECTS
    shape = rng.integers(0, 3, size=(n, K))
    color = np.stack([rng.permutation(len(COLORS))[:K] for _ in range(n)])
    size = rng.integers(0, 2, size=(n, K))
    corners = np.stack([rng.permutation(4)[:K] for _ in range(n)])
    pos = corners.copy()
    pos[n_obj == 1, 0] = rng.integers(0, 5, size=int((n_obj == 1).sum()))  # a lone object may sit in the center
    unused = np.arange(K)[None] >= n_obj[:, None]
    for a in (shape, color, size, pos):
        a[unused] = -1
    lo = np.array([SIZE_RADIUS[s][0] for s in SIZES])
    hi = np.array([SIZE_RADIUS[s][1] for s in SIZES])
    sz = np.clip(size, 0, 1)
    radius = (lo[sz] + rng.random((n, K)) * (hi - lo)[sz]).astype(np.float32)
    centers = np.array(POSITION_CENTERS, dtype=np.float32)
    jitter = rng.uniform(-1.5, 1.5, size=(n, K, 2)).astype(np.float32)
    cx = centers[np.clip(pos, 0, 4), 0] + jitter[..., 0]
    cy = centers[np.clip(pos, 0, 4), 1] + jitter[..., 1]
    bg = rng.integers(0, len(BACKGROUNDS), size=n)
    return dict(n_obj=n_obj, shape=shape, color=color, size=size, pos=pos, radius=radius, cx=cx, cy=cy, bg=bg)


def captions(scenes: dict) -> list:
    """Every object named with its colour, shape and place, in the task's wording."""
    from omni_ref.scenes import COLOR_NAMES, POSITIONS, SHAPES
    from .prompts import object_phrase
    return [" and ".join(object_phrase(COLOR_NAMES[scenes["color"][i, k]], SHAPES[scenes["shape"][i, k]],
                                       POSITIONS[scenes["pos"][i, k]]) for k in range(scenes["n_obj"][i]))
            for i in range(len(scenes["bg"]))]


def main(argv=None):
    """Writes three-object renders and their captions (right and wrong) for the classifier check:
    python3 -m flow_grpo.scenes3 --out FILE [--n 64 --seed 3]."""
    import argparse
    import json

    import omni_worker as ow
    from omni_ref.scenes import COLOR_NAMES
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args(argv)
    sc = sample_scenes(a.n, a.seed, p_objects=(0.0, 0.0, 1.0))
    right = captions(sc)
    wrong_sc = {k: v.copy() for k, v in sc.items()}
    for i in range(a.n):  # the last object takes a colour no object of the scene has
        free = [c for c in range(len(COLOR_NAMES)) if c not in sc["color"][i]]
        wrong_sc["color"][i, 2] = free[i % len(free)]
    images = render(sc)
    t = {"images": ow.Tensor("U8", images.shape, images.reshape(-1).tobytes())}
    with open(a.out, "wb") as f:
        f.write(ow.safetensors.serialize(t, {"prompts": json.dumps(right), "wrong_prompts": json.dumps(captions(wrong_sc))}))


if __name__ == "__main__":
    main()
