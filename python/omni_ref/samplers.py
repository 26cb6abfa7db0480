"""Reference samplers of docs/rl-math.md, in float32 on CPU (deterministic).

Schedule: sigmas = linspace(1, 1/N, N) in float64, shifted sigma' = s*sigma/(1+(s-1)*sigma),
cast to float32, terminal 0 appended (N+1 values). Timestep fed to the transformer:
float32(sigma) * 1000 computed in float32.

CFG: one doubled batch [cond_0..cond_{B-1}, uncond_0..uncond_{B-1}] through the transformer,
uncond = embeddings of the empty prompt ""; v = v_u + w * (v_c - v_u) (float32 tensor ops in that
order). w == 1: no uncond branch.

Steps (x: [B,C,h,w], v: guided velocity, i: step index, sigma = sigmas[i], sigma_next = sigmas[i+1],
dt = sigma_next - sigma, all float32):
  ode: x_next = x + dt * v
  sde: std_t = a * sqrt(sigma / (1 - (sigmas[1] if sigma == 1 else sigma)))
       mean = x * (1 + std_t^2 / (2 sigma) * dt) + v * (1 + std_t^2 (1 - sigma) / (2 sigma)) * dt
       s = std_t * sqrt(-dt); x_next = mean + s * eps
       logp = mean over (C,h,w) of  -(x_next - mean)^2 / (2 s^2) - log(s) - log(sqrt(2 pi))
  cps: std = sigma_next * sin(a pi / 2); x0 = x - sigma v; x1 = x + (1 - sigma) v
       mean = x0 (1 - sigma_next) + x1 sqrt(sigma_next^2 - std^2); x_next = mean + std * eps
       logp = mean over (C,h,w) of -(x_next - mean)^2
Window (W consecutive stochastic steps starting at start_b per sample): steps outside the window
are ode steps; only window steps are recorded (latents before the first window step and after
each window step; log-probs and timesteps of window steps).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .tokenizer import Tokenizer

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def setup_deterministic():
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(max(1, torch.get_num_threads()))


def sigma_schedule(steps: int, shift: float) -> torch.Tensor:
    s = np.linspace(1.0, 1.0 / steps, steps, dtype=np.float64)
    s = shift * s / (1 + (shift - 1) * s)
    return torch.from_numpy(np.append(s.astype(np.float32), np.float32(0.0)))


class Pipeline:
    def __init__(self, text_encoder, transformer, tokenizer: Tokenizer | None = None):
        self.text_encoder = text_encoder.eval()
        self.transformer = transformer.eval()
        self.tok = tokenizer or Tokenizer.default()

    @torch.no_grad()
    def encode(self, prompts):
        dev = next(self.transformer.parameters()).device
        ids = torch.from_numpy(self.tok(prompts)).to(dev)
        return self.text_encoder(ids)

    @torch.no_grad()
    def velocity(self, x, sigma, cond, uncond, guidance):
        """sigma: 0-d float32 tensor. cond/uncond: (embeds [B,L,D], pooled [B,P])."""
        B = x.shape[0]
        t = (sigma * 1000).reshape(1).expand(B).to(x.device)
        if guidance == 1.0:
            return self.transformer(x, cond[0], cond[1], t)
        out = self.transformer(torch.cat([x, x]), torch.cat([cond[0], uncond[0]]),
                               torch.cat([cond[1], uncond[1]]), torch.cat([t, t]))
        v_c, v_u = out[:B], out[B:]
        return v_u + guidance * (v_c - v_u)


def _mean_dims(x):
    return x.mean(dim=tuple(range(1, x.ndim)))


def sde_mean_std(x, v, sigma, sigma_next, sigma1, a):
    """a: [B] float32 noise levels. Returns mean, s (per-sample [B,1,1,1])."""
    dt = sigma_next - sigma
    den = sigma1 if float(sigma) == 1.0 else sigma
    std_t = (a * torch.sqrt(sigma / (1 - den))).reshape(-1, 1, 1, 1)
    mean = x * (1 + std_t ** 2 / (2 * sigma) * dt) + v * (1 + std_t ** 2 * (1 - sigma) / (2 * sigma)) * dt
    return mean, std_t * torch.sqrt(-dt)


def sde_log_prob(x_next, mean, s):
    return _mean_dims(-((x_next - mean) ** 2) / (2 * s ** 2) - torch.log(s) - LOG_SQRT_2PI)


def cps_mean_std(x, v, sigma, sigma_next, a):
    std = (sigma_next * torch.sin(a * (math.pi / 2))).reshape(-1, 1, 1, 1)
    x0 = x - sigma * v
    x1 = x + (1 - sigma) * v
    mean = x0 * (1 - sigma_next) + x1 * torch.sqrt(sigma_next ** 2 - std ** 2)
    return mean, std


def cps_log_prob(x_next, mean):
    return _mean_dims(-((x_next - mean) ** 2))


def step(x, v, sigmas, i, sde_type, a, eps=None, x_next=None):
    """One step. a: [B] noise levels. Given x_next (scoring mode) no noise is drawn.
    Returns (x_next, log_prob [B] or None)."""
    sigma, sigma_next = sigmas[i], sigmas[i + 1]
    if sde_type == "ode":
        xn = x + (sigma_next - sigma) * v
        return (xn if x_next is None else x_next), None
    if sde_type == "sde":
        mean, s = sde_mean_std(x, v, sigma, sigma_next, sigmas[1], a)
        xn = (mean + s * eps) if x_next is None else x_next
        return xn, sde_log_prob(xn, mean, s)
    if sde_type == "cps":
        mean, std = cps_mean_std(x, v, sigma, sigma_next, a)
        xn = (mean + std * eps) if x_next is None else x_next
        return xn, cps_log_prob(xn, mean)
    raise ValueError(sde_type)


@torch.no_grad()
def sample(pipe: Pipeline, prompts, initial_noise, steps=10, guidance=4.5, shift=3.0, sde_type="ode",
           noise_level=0.7, step_noise=None, window_starts=None, window_size=0):
    """Runs one rollout. initial_noise [B,C,h,w]; step_noise [B,N,C,h,w] (eps of every step).
    Returns a dict of float32 tensors (fixture names)."""
    B = len(prompts)
    sigmas = sigma_schedule(steps, shift).to(initial_noise.device)
    cond = pipe.encode(prompts)
    uncond = pipe.encode([""] * B) if guidance != 1.0 else None
    x = initial_noise.clone()
    windowed = window_starts is not None
    starts = torch.tensor(window_starts if windowed else [0] * B)
    lats, lps, ts, vels = [x], [], [], []
    rec_lat = [[] for _ in range(B)]
    rec_lp = [[] for _ in range(B)]
    rec_t = [[] for _ in range(B)]
    for i in range(steps):
        v = pipe.velocity(x, sigmas[i], cond, uncond, guidance)
        vels.append(v)
        if sde_type == "ode":
            x_next, lp = step(x, v, sigmas, i, "ode", None)
            in_win = torch.zeros(B, dtype=torch.bool)
        else:
            in_win = ((starts <= i) & (i < starts + window_size)) if windowed else torch.ones(B, dtype=torch.bool)
            a = torch.where(in_win, torch.tensor(noise_level, dtype=torch.float32), torch.tensor(0.0))
            a = a.to(x.device)
            eps = step_noise[:, i]
            x_st, lp = step(x, v, sigmas, i, sde_type, a, eps=eps)
            x_ode, _ = step(x, v, sigmas, i, "ode", None)
            x_next = torch.where(in_win.to(x.device).reshape(-1, 1, 1, 1), x_st, x_ode)
        if windowed:
            for b in range(B):
                if in_win[b]:
                    if not rec_lat[b]:
                        rec_lat[b].append(x[b])
                    rec_lat[b].append(x_next[b])
                    rec_lp[b].append(lp[b])
                    rec_t[b].append(sigmas[i] * 1000)
        else:
            lats.append(x_next)
            if lp is not None:
                lps.append(lp)
            ts.append((sigmas[i] * 1000).expand(B))
        x = x_next
    out = {"initial_noise": initial_noise, "velocities": torch.stack(vels, 1), "latents_clean": x,
           "prompt_embeds": cond[0], "pooled_prompt_embeds": cond[1]}
    if uncond is not None:
        out["negative_prompt_embeds"] = uncond[0]
        out["negative_pooled_prompt_embeds"] = uncond[1]
    if windowed:
        out["all_latents"] = torch.stack([torch.stack(r) for r in rec_lat])
        out["log_probs"] = torch.stack([torch.stack(r) for r in rec_lp])
        out["timesteps"] = torch.stack([torch.stack(r) for r in rec_t])
    else:
        out["all_latents"] = torch.stack(lats, 1)
        out["timesteps"] = torch.stack(ts, 1)
        if lps:
            out["log_probs"] = torch.stack(lps, 1)
    if step_noise is not None:
        out["step_noise"] = step_noise
    out["sigmas"] = sigmas
    return out


def to_uint8(latents: torch.Tensor) -> np.ndarray:
    """[-1, 1] latents (= pixels) -> uint8 [B,3,H,W]: round((x + 1) * 127.5) clamped."""
    return torch.clamp(torch.round((latents.float() + 1) * 127.5), 0, 255).to(torch.uint8).cpu().numpy()
