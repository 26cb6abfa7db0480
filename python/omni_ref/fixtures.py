"""Golden fixtures for the TypeScript tests, computed on CPU in float32 with the shipped weights
(models/shapes-dit/*.safetensors loaded into the PyTorch modules).

    python3 -m omni_ref.fixtures --model ../models/shapes-dit --rewards ../rewards --out ../test/fixtures

reference.safetensors: per case `<case>.<tensor>` (see the model card), `__metadata__`:
  cases: JSON list of {name, prompts, seeds, negativePrompt, guidanceScale, steps, shift, sigmas,
         sdeType, noiseLevel, windowStarts, windowSize, tensors}
  tokenizer: JSON list of {text, ids}
scenes.safetensors: rendered scenes + the classifier's logits and alignment scores (ORT, CPU).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .model import Config, DiT, TextEncoder
from .reward import parse_prompt, score_one
from .samplers import Pipeline, sample, setup_deterministic, sigma_schedule
from .scenes import captions, make_scene, render, sample_scenes
from .tokenizer import Tokenizer

P1 = "a red circle at the top left on a white background"
P2 = "a blue square"
P3 = "a green triangle at the bottom right and a yellow circle at the top left on a black background"

CASES = [
    dict(name="ode_cfg", prompts=[P1, P2], seeds=[11, 12], guidanceScale=4.5, sdeType="ode", noiseLevel=0.0),
    dict(name="sde_cfg", prompts=[P3], seeds=[21], guidanceScale=4.5, sdeType="sde", noiseLevel=0.7),
    dict(name="sde_nocfg", prompts=[P1], seeds=[31], guidanceScale=1.0, sdeType="sde", noiseLevel=0.7),
    dict(name="cps_cfg", prompts=[P2], seeds=[41], guidanceScale=4.5, sdeType="cps", noiseLevel=0.7),
    dict(name="sde_window_cfg", prompts=[P1, P3], seeds=[51, 52], guidanceScale=4.5, sdeType="sde",
         noiseLevel=0.7, windowStarts=[1, 3], windowSize=2),
]
TOKENIZER_TEXTS = ["", P1, P3, "A RED Circle!", "a zebra at the top-left", "red,red;red 42",
                   " ".join(["red"] * 30)]


def noise_for(seed: int, steps: int, stochastic: bool):
    """initial noise [3,32,32] then (if stochastic) step noise [N,3,32,32], one CPU generator per sample."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 32, 32, generator=g)
    e = torch.randn(steps, 3, 32, 32, generator=g) if stochastic else None
    return x, e


def load_pipeline(model_dir: str) -> Pipeline:
    from safetensors import safe_open
    with safe_open(os.path.join(model_dir, "transformer.safetensors"), "pt") as f:
        cfg = Config(**json.loads(f.metadata()["config"]))
    te_w = load_file(os.path.join(model_dir, "text_encoder.safetensors"))
    tr_w = load_file(os.path.join(model_dir, "transformer.safetensors"))
    tok = Tokenizer.load(os.path.join(model_dir, "tokenizer.json"))
    te, tr = TextEncoder(cfg), DiT(cfg)
    te.load_state_dict(te_w)
    tr.load_state_dict(tr_w)
    return Pipeline(te.float(), tr.float(), tok)


def ort_ode(model_dir, prompts, x, steps, guidance, shift):
    """The ODE-CFG rollout through onnxruntime (CPU) with the same maths, for a cross-check."""
    import onnxruntime as ort
    from safetensors.numpy import load_file as load_np
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    te = ort.InferenceSession(os.path.join(model_dir, "text_encoder.onnx"), so, providers=["CPUExecutionProvider"])
    tr = ort.InferenceSession(os.path.join(model_dir, "transformer.onnx"), so, providers=["CPUExecutionProvider"])
    tw = load_np(os.path.join(model_dir, "text_encoder.safetensors"))
    trw = load_np(os.path.join(model_dir, "transformer.safetensors"))
    tok = Tokenizer.load(os.path.join(model_dir, "tokenizer.json"))
    B = len(prompts)
    ids = tok(list(prompts) + [""] * B)
    hs, pooled = te.run(None, {"input_ids": ids, **tw})
    sig = sigma_schedule(steps, shift).numpy()
    lat = [x]
    for i in range(steps):
        t = np.full(2 * B, sig[i] * np.float32(1000), dtype=np.float32)
        v = tr.run(None, {"hidden_states": np.concatenate([x, x]), "encoder_hidden_states": hs,
                          "pooled_projections": pooled, "timestep": t, **trw})[0]
        v = v[B:] + np.float32(guidance) * (v[:B] - v[B:])
        x = x + (sig[i + 1] - sig[i]) * v
        lat.append(x)
    return np.stack(lat, 1)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--rewards", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--shift", type=float, default=3.0)
    args = ap.parse_args(argv)
    setup_deterministic()
    torch.set_num_threads(1)  # single-threaded CPU reductions: run-to-run identical
    os.makedirs(args.out, exist_ok=True)
    pipe = load_pipeline(args.model)
    tensors, meta_cases = {}, []
    for case in CASES:
        stochastic = case["sdeType"] != "ode"
        nz = [noise_for(s, args.steps, stochastic) for s in case["seeds"]]
        x0 = torch.stack([n[0] for n in nz])
        eps = torch.stack([n[1] for n in nz]) if stochastic else None
        r = sample(pipe, case["prompts"], x0, steps=args.steps, guidance=case["guidanceScale"], shift=args.shift,
                   sde_type=case["sdeType"], noise_level=case["noiseLevel"], step_noise=eps,
                   window_starts=case.get("windowStarts"), window_size=case.get("windowSize", 0))
        names = ["initial_noise", "step_noise", "all_latents", "velocities", "log_probs", "timesteps",
                 "prompt_embeds", "pooled_prompt_embeds", "latents_clean"]
        stored = []
        for k in names:
            if k in r:
                tensors[f"{case['name']}.{k}"] = r[k].float().contiguous()
                stored.append(k)
        meta_cases.append({
            "name": case["name"], "prompts": case["prompts"], "seeds": case["seeds"], "negativePrompt": "",
            "guidanceScale": case["guidanceScale"], "steps": args.steps, "shift": args.shift,
            "sigmas": [float(s) for s in r["sigmas"].tolist()], "sdeType": case["sdeType"],
            "noiseLevel": case["noiseLevel"], "windowStarts": case.get("windowStarts"),
            "windowSize": case.get("windowSize", 0), "tensors": stored,
        })
        print(case["name"], {k: list(tensors[f"{case['name']}.{k}"].shape) for k in stored}, flush=True)
        if case["name"] == "ode_cfg":
            try:
                got = ort_ode(args.model, case["prompts"], x0.numpy(), args.steps, case["guidanceScale"], args.shift)
                d = float(np.abs(got - r["all_latents"].numpy()).max())
                print(f"ode_cfg: onnxruntime trajectory vs PyTorch max abs diff {d:.3g}", flush=True)
                assert d < 1e-4
            except ImportError:
                print("onnxruntime not installed: skipped the ORT cross-check")
    tok = Tokenizer.load(os.path.join(args.model, "tokenizer.json"))
    meta = {"format": "omni-worker-reference/1", "cases": json.dumps(meta_cases),
            "tokenizer": json.dumps([{"text": t, "ids": tok.encode(t)} for t in TOKENIZER_TEXTS]),
            "imageToUint8": "clamp(round((x + 1) * 127.5), 0, 255)"}
    save_file(tensors, os.path.join(args.out, "reference.safetensors"), metadata=meta)
    print("reference.safetensors:", os.path.getsize(os.path.join(args.out, "reference.safetensors")), "bytes")
    write_scene_fixtures(args.rewards, args.out)


def write_scene_fixtures(rewards_dir: str, out_dir: str):
    """Rendered scenes with prompts, and the classifier's outputs and scores (onnxruntime, CPU)."""
    import onnxruntime as ort
    special = [
        make_scene([("circle", "red", "large", "center")], "white"),
        make_scene([("square", "blue", "large", "top left")], "black"),
        make_scene([("triangle", "green", "small", "bottom right"), ("circle", "yellow", "large", "top left")], "gray"),
    ]
    sc = sample_scenes(13, 4242)
    caps = captions(sc, 4243, full=True)
    imgs = np.concatenate([render(s) for s in special] + [render(sc)])
    prompts = ["a red circle", "a blue square at the top left on a black background",
               "a small green triangle at the bottom right and a yellow circle at the top left on a gray background"]
    prompts += [caps[i][0] if i % 2 == 0 else caps[(i + 1) % 13][0] for i in range(13)]  # odd: mismatched
    extra = [("a blue square", 0), ("", 0), ("a red circle at the top left", 0), ("the sky", 0)]
    img_idx = list(range(16)) + [i for _, i in extra]
    prompts += [p for p, _ in extra]
    images = imgs[img_idx]
    sess = ort.InferenceSession(os.path.join(rewards_dir, "scene-classifier.onnx"), providers=["CPUExecutionProvider"])
    s, c, b = sess.run(None, {"image": images.astype(np.float32)})
    parsed = [parse_prompt(p) for p in prompts]
    hard = np.array([score_one(parsed[i], s[i], c[i], b[i], "hard") for i in range(len(prompts))], np.float32)
    soft = np.array([score_one(parsed[i], s[i], c[i], b[i], "soft") for i in range(len(prompts))], np.float32)
    t = {"images": torch.from_numpy(np.ascontiguousarray(images)), "shape_logits": torch.from_numpy(s),
         "color_logits": torch.from_numpy(c), "background_logits": torch.from_numpy(b),
         "score_hard": torch.from_numpy(hard), "score_soft": torch.from_numpy(soft)}
    save_file(t, os.path.join(out_dir, "scenes.safetensors"),
              metadata={"prompts": json.dumps(prompts), "parsed": json.dumps(parsed)})
    for p, h, so in zip(prompts, hard, soft):
        print(f"  {h:.3f} {so:.3f}  {p}")


if __name__ == "__main__":
    main()
