"""Accuracy through the worker: deterministic (ODE) samples of fixed seeds, judged by the reward
classifier. Held-out three-object prompts (never trained on) and single-object prompts (forgetting)."""
from __future__ import annotations

import numpy as np

from .reward import score

EVAL_SEED = 7_000_000


def sample_images(client, prompts, seeds_per_prompt: int, seed: int = EVAL_SEED):
    """uint8 [len(prompts) * seeds, 3, H, W]; prompt k's samples use seeds seed + k*S + (0..S-1)."""
    reqs = [{"prompt": p, "num_outputs_per_prompt": seeds_per_prompt, "seed": seed + k * seeds_per_prompt}
            for k, p in enumerate(prompts)]
    return client.generate(reqs)["responses"]


def seed_diversity(images, seeds_per_prompt: int) -> float:
    """Mean over prompts of the per-pixel standard deviation across a prompt's seeds (0-255): how
    much the samples of one prompt still differ (a policy collapsed onto one image per prompt: 0).
    The same figure as check-weights.ts."""
    x = np.asarray(images, dtype=np.float64)
    x = x.reshape(x.shape[0] // seeds_per_prompt, seeds_per_prompt, -1)
    return float(x.std(axis=1).mean())


def judge(classify, images, prompts):
    return score(prompts, *classify(images))


def evaluate(client, classify, heldout, single, seeds_per_prompt: int) -> dict:
    out = {}
    for name, prompts, seeds in (("heldout", heldout, seeds_per_prompt), ("single", single, 1)):
        images = sample_images(client, prompts, seeds)
        rewards, accurate = judge(classify, images, [p for p in prompts for _ in range(seeds)])
        out[f"{name}_accuracy"] = float(accurate.mean())
        out[f"{name}_reward"] = float(rewards.mean())
        out[f"{name}_n"] = int(len(accurate))
        if seeds > 1:
            out[f"{name}_diversity"] = seed_diversity(images, seeds)
    return out
