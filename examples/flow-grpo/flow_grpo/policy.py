"""The trainer's side of the model (PyTorch): the embedded model's transformer as a policy whose
SDE transitions have log-probs (docs/rl-math.md, Flow-GRPO's formulas), and the reward classifier.

The text encoder stays frozen: the rollout carries the prompt embeddings the worker used.
"""
from __future__ import annotations

import json
import math
import os

import torch

from omni_ref.classifier import SceneClassifier
from omni_ref.model import DiT, Config
from omni_worker import safetensors
from omni_worker.tensor import convert

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def read_safetensors(path: str):
    """(metadata, {name: float32 torch tensor}) with the client's reader (any float dtype widened)."""
    with open(path, "rb") as f:
        meta, tensors = safetensors.parse(f.read())
    return meta, {k: convert(t, "torch").float() for k, t in tensors.items()}


def load_transformer(model_dir: str) -> DiT:
    meta, weights = read_safetensors(os.path.join(model_dir, "transformer.safetensors"))
    net = DiT(Config(**json.loads(meta["config"])))
    net.load_state_dict(weights)
    return net


def load_classifier(onnx_path: str) -> SceneClassifier:
    """The reward classifier from its ONNX graph's initializers (their names are the state dict's)."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(onnx_path).graph
    net = SceneClassifier()
    net.load_state_dict({i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer})
    return net.eval()


def state_dict_f32(net: torch.nn.Module) -> dict:
    """The transformer's weights as host float32 numpy arrays (what update_weights sends)."""
    return {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}


def guided_velocity(net, x, t, embeds, pooled, neg_embeds, neg_pooled, guidance: float):
    """CFG as the worker runs it: one doubled batch [cond, uncond], v_u + w (v_c - v_u)."""
    B = x.shape[0]
    out = net(torch.cat([x, x]), torch.cat([embeds, neg_embeds]), torch.cat([pooled, neg_pooled]), torch.cat([t, t]))
    v_c, v_u = out[:B], out[B:]
    return v_u + guidance * (v_c - v_u)


def sde_step_stats(x, v, sigma, sigma_next, sigma1, noise_level):
    """Flow-GRPO's SDE step, per sample: mean [B,C,H,W] and std s [B,1,1,1].
    sigma, sigma_next: [B] float32; at sigma == 1 the std uses sigmas[1] (no division by zero)."""
    dt = (sigma_next - sigma).reshape(-1, 1, 1, 1)
    sg = sigma.reshape(-1, 1, 1, 1)
    den = torch.where(sg == 1.0, torch.full_like(sg, float(sigma1)), sg)
    std_t = noise_level * torch.sqrt(sg / (1 - den))
    mean = x * (1 + std_t ** 2 / (2 * sg) * dt) + v * (1 + std_t ** 2 * (1 - sg) / (2 * sg)) * dt
    return mean, std_t * torch.sqrt(-dt)


def sde_log_prob(x_next, mean, s):
    """Mean over (C,H,W) of the Gaussian log-density, as the worker records it."""
    lp = -((x_next - mean) ** 2) / (2 * s ** 2) - torch.log(s) - LOG_SQRT_2PI
    return lp.mean(dim=(1, 2, 3))


def transition_log_prob(net, batch: dict, j, guidance: float, sigma1, noise_level):
    """Log-prob [b] of window step j (a [b] index tensor or an int) and the step's mean and std.
    batch: torch tensors on the device: all_latents, all_timesteps, sigma, sigma_next, embeddings."""
    idx = torch.arange(batch["all_latents"].shape[0], device=batch["all_latents"].device)
    x = batch["all_latents"][idx, j]
    x_next = batch["all_latents"][idx, j + 1]
    t = batch["all_timesteps"][idx, j]
    v = guided_velocity(net, x, t, batch["prompt_embeds"], batch["pooled_prompt_embeds"],
                        batch["negative_prompt_embeds"], batch["negative_pooled_prompt_embeds"], guidance)
    mean, s = sde_step_stats(x, v, batch["sigma"][idx, j], batch["sigma_next"][idx, j], sigma1, noise_level)
    return sde_log_prob(x_next, mean, s), mean, s


def gaussian_kl(mean, mean_ref, s):
    """KL between two SDE steps of equal std, per sample (mean over C,H,W): |mu - mu_ref|^2 / (2 s^2)."""
    return (((mean - mean_ref) ** 2) / (2 * s ** 2)).mean(dim=(1, 2, 3))
