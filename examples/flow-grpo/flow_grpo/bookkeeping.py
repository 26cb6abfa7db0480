"""Rollout bookkeeping (numpy only): what the trainer asked for is what came back, and the
per-step transitions a PPO update needs.

A rollout with an SDE window holds, per sample, the latents before the window and after each of
its W steps (`all_latents` [n, W+1, C, H, W]), the worker's log-probs of those steps
(`rollout_log_probs` [n, W]), their timesteps, and the window start (`sde_window_start`). Step j
of sample b is schedule step i = start_b + j: sigma = sigmas[i], sigma_next = sigmas[i + 1].
"""
from __future__ import annotations

import numpy as np

TRAJECTORY_KEYS = ("all_latents", "all_timesteps", "rollout_log_probs", "prompt_embeds", "pooled_prompt_embeds")


class RolloutMismatch(RuntimeError):
    """The rollout is not the one the trainer asked for (wrong weights, samples or shapes)."""


def rollout_requests(prompts, group: int, seed: int, sde: dict, capture=None):
    """One request per prompt, G samples each with seeds seed + k*G + (0..G-1)."""
    if group < 2:
        raise ValueError(f"group must be at least 2 (advantages need a group), got {group}")
    capture = capture or {"latents": True, "timesteps": True, "logProbs": True}
    return [{"prompt": p, "num_outputs_per_prompt": group, "seed": seed + k * group, "sde": sde, "capture": capture}
            for k, p in enumerate(prompts)]


def check_rollout(rollout, prompts, group: int, seed: int, weights_version, window_size: int) -> None:
    """Raises RolloutMismatch naming what differs from the request."""
    n = len(prompts) * group
    meta, per = rollout.meta_info, rollout.non_tensor_batch
    if weights_version is not None and meta.get("weights_version") != weights_version:
        raise RolloutMismatch(f"rollout ran on weights version {meta.get('weights_version')}, "
                              f"the trainer sent version {weights_version}")
    missing = [k for k in TRAJECTORY_KEYS if k not in rollout]
    if missing:
        raise RolloutMismatch(f"rollout lacks {', '.join(missing)}")
    if len(rollout) != n:
        raise RolloutMismatch(f"{len(rollout)} samples for {len(prompts)} prompts x {group}")
    want_prompts = [p for p in prompts for _ in range(group)]
    if list(per.get("prompt", [])) != want_prompts:
        raise RolloutMismatch("samples are not in request order (prompt column differs)")
    want_seeds = [seed + i for i in range(n)]
    if list(per.get("seed", [])) != want_seeds:
        raise RolloutMismatch(f"seeds {per.get('seed', [])[:4]}... differ from the requested {want_seeds[:4]}...")
    if meta.get("sde_window_size") != window_size or "sde_window_start" not in per:
        raise RolloutMismatch(f"sde window {meta.get('sde_window_size')} for a requested {window_size}")
    lat, lp = rollout["all_latents"], rollout["rollout_log_probs"]
    if tuple(lat.shape[:2]) != (n, window_size + 1) or tuple(lp.shape) != (n, window_size):
        raise RolloutMismatch(f"all_latents {tuple(lat.shape)} / rollout_log_probs {tuple(lp.shape)} "
                              f"for {n} samples and a window of {window_size}")


def transitions(rollout) -> dict:
    """Per (sample, window step): schedule indices and sigmas, float32 as the worker used them."""
    sigmas = np.asarray(rollout.meta_info["sigmas"], dtype=np.float32)
    starts = np.asarray(rollout.non_tensor_batch["sde_window_start"], dtype=np.int64)
    W = int(rollout.meta_info["sde_window_size"])
    step = starts[:, None] + np.arange(W)[None]
    if step.max() + 1 >= len(sigmas):
        raise RolloutMismatch(f"window reaches step {step.max()} of a {len(sigmas) - 1}-step schedule")
    return {"step": step, "sigma": sigmas[step], "sigma_next": sigmas[step + 1], "sigma1": np.float32(sigmas[1]),
            "noise_level": np.float32(rollout.meta_info["noise_level"]),
            "guidance_scale": float(rollout.meta_info["guidance_scale"])}


def max_abs_log_ratio(new_log_probs, old_log_probs) -> float:
    """max |new - old| over every sample and step: 0 for a perfectly on-policy first update."""
    new, old = np.asarray(new_log_probs, dtype=np.float64), np.asarray(old_log_probs, dtype=np.float64)
    if new.shape != old.shape:
        raise ValueError(f"log-probs {new.shape} vs {old.shape}")
    return float(np.max(np.abs(new - old)))
