"""Scene classifier for the scene-alignment reward: per position slot (top left, top right,
bottom left, bottom right, center) the shape (none/circle/square/triangle) and colour, plus the
background colour. Trained on rendered scenes with noise/colour/blur augmentation.

    python3 -m omni_ref.classifier --out DIR   (writes DIR/scene-classifier.onnx, .json, .pt)

ONNX: input `image` f32 [B, 3, 32, 32], raw pixel values 0..255 (NCHW); outputs
`shape_logits` [B, 5, 4], `color_logits` [B, 5, 6], `background_logits` [B, 3]. Weights are
initializers (this graph is not trained by the worker).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import build
from .scenes import BACKGROUND_NAMES, COLOR_NAMES, POSITIONS, POSITION_PHRASE, SHAPES, SIZES

N_SLOTS = 5


class SceneClassifier(nn.Module):
    def __init__(self, width=48):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.GELU(),
            nn.Conv2d(w, w, 3, padding=1), nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),   # 16x16
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.GELU(),  # 8x8
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.GELU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * 64, 128), nn.GELU(),
                                  nn.Linear(128, N_SLOTS * (1 + len(SHAPES)) + N_SLOTS * len(COLOR_NAMES) + len(BACKGROUND_NAMES)))

    def forward(self, image):
        x = image / 127.5 - 1.0
        out = self.head(self.features(x))
        ns, nc = N_SLOTS * (1 + len(SHAPES)), N_SLOTS * len(COLOR_NAMES)
        shape = out[:, :ns].reshape(-1, N_SLOTS, 1 + len(SHAPES))
        color = out[:, ns:ns + nc].reshape(-1, N_SLOTS, len(COLOR_NAMES))
        bg = out[:, ns + nc:]
        return shape, color, bg


def augment(x, gen):
    """x: float [B,3,32,32] 0..255. Colour shift, gaussian noise, sometimes blur."""
    B = x.shape[0]
    dev = x.device
    x = x + (torch.rand(B, 3, 1, 1, device=dev, generator=gen) * 2 - 1) * 12
    x = x + torch.randn(x.shape, device=dev, generator=gen) * torch.rand(B, 1, 1, 1, device=dev, generator=gen) * 20
    blur = torch.rand(B, 1, 1, 1, device=dev, generator=gen) < 0.3
    k = torch.ones(3, 1, 3, 3, device=dev) / 9
    xb = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=3)
    x = torch.where(blur, xb, x)
    return x.clamp(0, 255)


def spec() -> dict:
    return {
        "format": "omni-worker-scene-classifier/1",
        "graph": "scene-classifier.onnx",
        "input": {"name": "image", "dtype": "float32", "shape": ["B", 3, 32, 32], "range": [0, 255],
                  "layout": "NCHW, raw uint8 pixel values as float"},
        "outputs": {"shape_logits": ["B", N_SLOTS, 1 + len(SHAPES)],
                    "color_logits": ["B", N_SLOTS, len(COLOR_NAMES)],
                    "background_logits": ["B", len(BACKGROUND_NAMES)]},
        "slots": POSITIONS,
        "shapes": ["none"] + SHAPES,
        "colors": COLOR_NAMES,
        "backgrounds": BACKGROUND_NAMES,
        "sizes": SIZES,
        "captions": {
            "grammar": "OBJECT ('and' OBJECT)* ['on a' BACKGROUND 'background']; OBJECT = ('a'|'an') [SIZE] [COLOR] SHAPE [POSITION]",
            "positionPhrases": {POSITION_PHRASE[p]: p for p in POSITIONS},
            "positionAliases": {"middle": "center", "centre": "center"},
            "scoredAttributes": ["shape", "color", "position", "background"],
            "note": "size is parsed but not scored; each object is matched to a distinct slot (best assignment)",
        },
    }


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--data", type=int, default=120000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    data = build(args.data, seed=5000 + args.seed, per_scene=1)
    test = build(8192, seed=9000 + args.seed, per_scene=1)
    print(f"classifier data in {time.time() - t0:.1f}s", flush=True)
    X = torch.from_numpy(data["images"]).to(dev)
    S = torch.from_numpy(data["slot_shape"]).to(dev)
    C = torch.from_numpy(data["slot_color"]).to(dev)
    G = torch.from_numpy(data["bg"]).to(dev)
    net = SceneClassifier().to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps, pct_start=0.1)
    gen = torch.Generator(device=dev).manual_seed(args.seed + 3)
    t0 = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(X), (args.batch,), device=dev, generator=gen)
        x = augment(X[idx].float(), gen)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            s, c, b = net(x)
        loss = (F.cross_entropy(s.float().reshape(-1, s.shape[-1]), S[idx].reshape(-1))
                + F.cross_entropy(c.float().reshape(-1, c.shape[-1]), C[idx].reshape(-1), ignore_index=-1)
                + F.cross_entropy(b.float(), G[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0:
            print(f"classifier step {step + 1} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    net.eval().float().cpu()
    with torch.no_grad():
        s, c, b = net(torch.from_numpy(test["images"]).float())
    ts, tc = torch.from_numpy(test["slot_shape"]), torch.from_numpy(test["slot_color"])
    occ = ts > 0
    acc = {
        "slot_shape": (s.argmax(-1) == ts).float().mean().item(),
        "slot_color_occupied": (c.argmax(-1) == tc)[occ].float().mean().item(),
        "background": (b.argmax(-1) == torch.from_numpy(test["bg"])).float().mean().item(),
        "scene_exact": ((s.argmax(-1) == ts).all(1) & ((c.argmax(-1) == tc) | ~occ).all(1)
                        & (b.argmax(-1) == torch.from_numpy(test["bg"]))).float().mean().item(),
    }
    print("classifier held-out accuracy:", json.dumps(acc), flush=True)
    torch.save(net.state_dict(), os.path.join(args.out, "scene-classifier.pt"))
    dummy = torch.zeros(2, 3, 32, 32)
    torch.onnx.export(net, (dummy,), os.path.join(args.out, "scene-classifier.onnx"), input_names=["image"],
                      output_names=["shape_logits", "color_logits", "background_logits"],
                      dynamic_axes={k: {0: "batch"} for k in ["image", "shape_logits", "color_logits", "background_logits"]},
                      opset_version=17, dynamo=False)
    sp = spec()
    sp["heldOutAccuracy"] = acc
    with open(os.path.join(args.out, "scene-classifier.json"), "w") as f:
        json.dump(sp, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
