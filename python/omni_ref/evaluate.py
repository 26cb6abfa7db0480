"""Measures the model: 256 single-object prompts (the caption grammar, seed fixed), 10 ODE steps,
CFG 4.5, shift 3, judged by the scene classifier; plus 256 two-object prompts; writes the sample
grid PNG.

    python3 -m omni_ref.evaluate --model ../models/shapes-dit --classifier ../rewards --out eval/
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

from .classifier import SceneClassifier
from .png import grid, write_png
from .reward import parse_prompt, score_one, shape_color_right
from .samplers import Pipeline, sample, setup_deterministic, to_uint8
from .scenes import captions, sample_scenes

GRID_PROMPTS = [
    "a red circle",
    "a blue square",
    "a green triangle",
    "a yellow circle at the top left",
    "a purple square at the bottom right",
    "an orange triangle in the center",
    "a red square on a black background",
    "a blue circle at the top right on a gray background",
    "a small green circle at the bottom left on a white background",
    "a large yellow triangle in the center on a black background",
    "a red circle at the top left and a blue square at the bottom right",
    "a purple triangle at the top right and an orange circle at the bottom left on a gray background",
]


def load_pipeline(model_dir: str, device) -> Pipeline:
    from .fixtures import load_pipeline as load_cpu
    pipe = load_cpu(model_dir)
    pipe.text_encoder.to(device)
    pipe.transformer.to(device)
    return pipe


def run_prompts(pipe, prompts, seed, device, batch=256, **kw):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(prompts), 3, 32, 32, generator=g)
    outs = []
    for i in range(0, len(prompts), batch):
        r = sample(pipe, prompts[i:i + batch], noise[i:i + batch].to(device), **kw)
        outs.append(to_uint8(r["latents_clean"]))
    return np.concatenate(outs)


def judge(net, images, prompts, device):
    with torch.no_grad():
        s, c, b = net(torch.from_numpy(images).float().to(device))
    s, c, b = s.cpu().numpy(), c.cpu().numpy(), b.cpu().numpy()
    parsed = [parse_prompt(p) for p in prompts]
    right = np.array([shape_color_right(parsed[i], s[i], c[i]) for i in range(len(prompts))])
    hard = np.array([score_one(parsed[i], s[i], c[i], b[i], "hard") for i in range(len(prompts))])
    return right, hard


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--classifier", required=True, help="scene-classifier.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=256)
    args = ap.parse_args(argv)
    setup_deterministic()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pipe = load_pipeline(args.model, dev)
    net = SceneClassifier().to(dev)
    net.load_state_dict(torch.load(args.classifier, map_location="cpu"))
    net.eval()
    os.makedirs(args.out, exist_ok=True)
    res = {}
    for name, n_obj, seed in (("single", 1, 777), ("double", 2, 778)):
        sc = sample_scenes(args.n * 3, seed)
        keep = np.nonzero(sc["n_obj"] == n_obj)[0][: args.n]
        caps = captions(sc, seed + 1)
        prompts = [caps[i][0] for i in keep]
        for label, w in (("cfg4.5", 4.5), ("cfg1", 1.0)):
            imgs = run_prompts(pipe, prompts, seed + 2, dev, steps=10, guidance=w, shift=3.0)
            right, hard = judge(net, imgs, prompts, dev)
            res[f"{name}_{label}"] = {"n": len(prompts), "shape_color_right": float(right.mean()),
                                      "alignment_reward_mean": float(hard.mean())}
            print(name, label, json.dumps(res[f"{name}_{label}"]), flush=True)
        with open(os.path.join(args.out, f"prompts_{name}.txt"), "w") as f:
            f.write("\n".join(prompts) + "\n")
    # real rendered scenes through the judge (classifier sanity on the same prompts)
    sc = sample_scenes(args.n * 3, 777)
    keep = np.nonzero(sc["n_obj"] == 1)[0][: args.n]
    from .scenes import render
    real = render({k: v[keep] for k, v in sc.items()})
    caps = captions(sc, 778)
    right, hard = judge(net, real, [caps[i][0] for i in keep], dev)
    res["rendered_single"] = {"n": len(keep), "shape_color_right": float(right.mean()), "alignment_reward_mean": float(hard.mean())}
    print("rendered", json.dumps(res["rendered_single"]), flush=True)
    # grid: one row per prompt, 8 seeds
    rows = []
    for r, p in enumerate(GRID_PROMPTS):
        rows.append(run_prompts(pipe, [p] * 8, 100 + r, dev, steps=10, guidance=4.5, shift=3.0))
    write_png(os.path.join(args.out, "samples.png"), grid(np.concatenate(rows), 8, scale=3))
    res["grid_prompts"] = GRID_PROMPTS
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
