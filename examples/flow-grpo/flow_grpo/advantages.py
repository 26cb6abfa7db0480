"""Group-normalised advantages (GRPO): each sample's reward against its prompt group's."""
from __future__ import annotations

import numpy as np


def group_advantages(rewards, groups, eps: float = 1e-4, clip: float = 5.0):
    """(r - mean_g) / (std_g + eps), clipped to [-clip, clip]; groups: one id per sample.

    A group whose samples all scored the same gets advantage 0 (nothing to learn from it).
    std is the population std (ddof 0), as Flow-GRPO's per-prompt stat tracker computes it.
    """
    r = np.asarray(rewards, dtype=np.float64)
    g = np.asarray(groups)
    if r.ndim != 1 or g.shape != r.shape:
        raise ValueError(f"rewards {r.shape} and groups {g.shape} must be one value per sample")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards hold NaN or infinity")
    adv = np.zeros_like(r)
    for key in np.unique(g):
        m = g == key
        adv[m] = (r[m] - r[m].mean()) / (r[m].std() + eps)
    return np.clip(adv, -clip, clip).astype(np.float32)


def informative_fraction(rewards, groups) -> float:
    """Share of groups whose rewards differ (the ones that carry a learning signal)."""
    r, g = np.asarray(rewards), np.asarray(groups)
    keys = np.unique(g)
    return float(np.mean([np.ptp(r[g == k]) > 0 for k in keys])) if len(keys) else 0.0
