"""Trains shapes-dit (text encoder + DiT) with rectified flow on synthetic scenes.

    python3 -m omni_ref.train --out ckpt/   (defaults: the shipped model's settings)

x_sigma = (1 - sigma) x0 + sigma e, target v = e - x0; sigma = shift(u), u ~ logit-normal(0, 1),
shift 3 (the sampling schedule's); captions dropped to "" with p 0.1 (classifier-free guidance);
AdamW, bf16 autocast, EMA of the weights (exported). Seeds fixed; CUDA kernels are not bitwise
deterministic, so a rerun reproduces the model up to float noise.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .data import build
from .model import Config, ShapesModel, param_count
from .tokenizer import Tokenizer


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--data", type=int, default=240000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--shift", type=float, default=3.0)
    ap.add_argument("--drop", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.9995)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = Tokenizer.default()
    cfg = Config(vocab_size=len(tok.vocab), max_length=tok.max_length, dim=args.dim, depth=args.depth, heads=args.heads)

    t0 = time.time()
    data = build(args.data, seed=1000 + args.seed)
    print(f"data: {len(data['images'])} scenes in {time.time() - t0:.1f}s", flush=True)
    images = torch.from_numpy(data["images"]).to(dev)
    ids = torch.from_numpy(data["ids"]).to(dev)  # [n, K, L]
    empty = torch.tensor(tok.encode(""), device=dev)
    n, K, L = ids.shape

    model = ShapesModel(cfg).to(dev)
    ema = ShapesModel(cfg).to(dev)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    print(f"params: text_encoder {param_count(model.text_encoder)}, transformer {param_count(model.transformer)}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0,
                            fused=dev.type == "cuda")
    warm = 500

    def lr_at(s):
        if s < warm:
            return args.lr * (s + 1) / warm
        p = (s - warm) / max(1, args.steps - warm)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    gen = torch.Generator(device=dev).manual_seed(args.seed + 1)
    ema_params = list(ema.parameters())
    params = list(model.parameters())
    t0 = time.time()
    losses = []
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        idx = torch.randint(0, n, (args.batch,), device=dev, generator=gen)
        k = torch.randint(0, K, (args.batch,), device=dev, generator=gen)
        x0 = images[idx].float() / 127.5 - 1.0
        tid = ids[idx, k]
        drop = torch.rand(args.batch, device=dev, generator=gen) < args.drop
        tid = torch.where(drop[:, None], empty[None], tid)
        u = torch.sigmoid(torch.randn(args.batch, device=dev, generator=gen))
        sigma = args.shift * u / (1 + (args.shift - 1) * u)
        e = torch.randn(x0.shape, device=dev, generator=gen)
        s4 = sigma[:, None, None, None]
        xt = (1 - s4) * x0 + s4 * e
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            hs, pooled = model.text_encoder(tid)
            v = model.transformer(xt, hs, pooled, sigma * 1000)
        loss = F.mse_loss(v.float(), e - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, params, 1 - d)
        losses.append(loss.detach())
        if (step + 1) % 500 == 0 or (step + 1) in (50, 100, 200) or step == args.steps - 1:
            ls = torch.stack(losses).mean().item()
            losses = []
            print(f"step {step + 1}/{args.steps} loss {ls:.4f} lr {lr_at(step):.2e} {time.time() - t0:.0f}s", flush=True)
    train_s = time.time() - t0
    torch.save({"config": cfg.to_dict(), "ema": ema.state_dict(), "model": model.state_dict(),
                "args": vars(args), "train_seconds": train_s}, os.path.join(args.out, "shapes-dit.pt"))
    with open(os.path.join(args.out, "train.json"), "w") as f:
        json.dump({"args": vars(args), "train_seconds": train_s, "final_loss": ls,
                   "params_text_encoder": param_count(model.text_encoder),
                   "params_transformer": param_count(model.transformer)}, f, indent=1)
    print(f"trained in {train_s:.0f}s", flush=True)


if __name__ == "__main__":
    main()
