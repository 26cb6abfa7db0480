"""The same rollouts in pure PyTorch (python/omni_ref's samplers on the trainer's device): the
baseline the worker's throughput is measured against, and a way to run the recipe without Node.

It answers `generate` with what the worker's rollout holds (same names and layout), from the
policy's current weights; sleep, wake and weight updates are no-ops (the weights are the policy's).
Its noise is torch's, not the worker's: the samples differ, their distribution does not.
"""
from __future__ import annotations

import copy
import json
import os

import numpy as np
import torch

from omni_ref.model import Config, TextEncoder
from omni_ref.samplers import Pipeline, sample, sigma_schedule, to_uint8
from omni_ref.tokenizer import Tokenizer
from omni_worker.rollout import Rollout

from .policy import read_safetensors


class TorchEngine:
    def __init__(self, model_dir: str, policy: torch.nn.Module, device, steps=10, guidance=4.5, shift=3.0):
        meta, te_w = read_safetensors(os.path.join(model_dir, "text_encoder.safetensors"))
        tr_meta, _ = read_safetensors(os.path.join(model_dir, "transformer.safetensors"))
        te = TextEncoder(Config(**json.loads(tr_meta["config"])))
        te.load_state_dict(te_w)
        self.policy = policy
        self.rollout_net = copy.deepcopy(policy).eval().requires_grad_(False)
        self.pipe = Pipeline(te.to(device), self.rollout_net, Tokenizer.load(os.path.join(model_dir, "tokenizer.json")))
        self.device, self.steps, self.guidance, self.shift = torch.device(device), steps, guidance, shift
        self.version = 0

    # the worker's lifecycle routes, as no-ops
    def is_sleeping(self):
        return False

    def sleep(self, level=1):
        return {"level": level}

    def wake_up(self, tags=None):
        return {"awake": True}

    def update_weights(self, state_dict=None):
        """The given host state dict (numpy), or else the policy's current weights."""
        if state_dict is None:
            self.rollout_net.load_state_dict(self.policy.state_dict())
        else:
            self.rollout_net.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state_dict.items()})
        self.version += 1
        return {"weightsVersion": self.version}

    def generate(self, requests):
        known = {"prompt", "num_outputs_per_prompt", "seed", "sde", "capture"}
        for i, r in enumerate(requests):
            unknown = set(r) - known
            if unknown:
                raise ValueError(f"request {i}: the PyTorch engine does not take {sorted(unknown)}")
            if (r.get("sde"), r.get("capture")) != (requests[0].get("sde"), requests[0].get("capture")):
                raise ValueError(f"request {i}: sde/capture differ from request 0's; one setting per call")
        prompts, seeds = [], []
        for r in requests:
            n = r.get("num_outputs_per_prompt", 1)
            prompts += [r["prompt"]] * n
            seeds += [r.get("seed", 0) + k for k in range(n)]
        sde, capture = requests[0].get("sde"), bool(requests[0].get("capture"))
        B, dev = len(prompts), self.device
        g = torch.Generator(device=dev).manual_seed(seeds[0])
        noise = torch.randn(B, 3, 32, 32, generator=g, device=dev)
        kw = dict(steps=self.steps, guidance=self.guidance, shift=self.shift)
        per, meta = {"prompt": prompts, "negative_prompt": [""] * B, "seed": seeds}, {}
        if sde:
            W, (lo, hi) = sde["window"]["size"], sde["window"]["range"]
            starts = torch.randint(lo, hi - W + 1, (B,), generator=g, device=dev).tolist()
            step_noise = torch.randn(B, self.steps, 3, 32, 32, generator=g, device=dev)
            kw.update(sde_type=sde["type"], noise_level=sde["noiseLevel"], step_noise=step_noise,
                      window_starts=starts, window_size=W)
            per["sde_window_start"] = starts
            meta.update(sde_type=sde["type"], noise_level=sde["noiseLevel"], sde_window_size=W, sde_window_range=[lo, hi])
        out = sample(self.pipe, prompts, noise, **kw)
        sigmas = sigma_schedule(self.steps, self.shift)
        meta.update(sigmas=sigmas.tolist(), steps=self.steps, guidance_scale=self.guidance, weights_version=self.version)
        tensors = {"responses": to_uint8(out["latents_clean"]), "latents_clean": out["latents_clean"]}
        if capture:
            tensors.update(all_latents=out["all_latents"], all_timesteps=out["timesteps"],
                           rollout_log_probs=out["log_probs"], prompt_embeds=out["prompt_embeds"],
                           pooled_prompt_embeds=out["pooled_prompt_embeds"],
                           negative_prompt_embeds=out["negative_prompt_embeds"],
                           negative_pooled_prompt_embeds=out["negative_pooled_prompt_embeds"])
        return Rollout({k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()},
                       per, meta)
