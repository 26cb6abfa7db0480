"""Issue 10 item 6, the DiT benchmark's PyTorch side and its model folders (BENCHMARKS.md, "The DiT
against PyTorch"; scripts/device-dit-bench.sh runs it with bench/dit-vs-torch.ts).

    python3 -m omni_ref.bench_dit --depth 14 --out /tmp/dit/d14 --folders float32,float16,bfloat16

Builds model.py's ShapesModel (DiT dim 1152, heads 16, 64x64x3, patch 2, and a random text
encoder) with a fixed seed, then writes under --out:
- one omni-worker model folder per --folders precision (OUT/<precision>/): graphs from dit_onnx.py
  (parameters as inputs in that precision, float32 data in and out), weights in that dtype;
- reference.safetensors: transformer inputs for 2 rows and PyTorch's outputs on them (float32 with
  TF32 off, and bfloat16 autocast), so the worker's output can be checked against the same model;
- torch.json: seconds per CFG step at --batch images (2 x batch transformer rows, then the CFG
  combination and an Euler step, all on the device), the median of --reps single steps after
  --warmup, each CUDA-synchronised: float32 (TF32 off), bfloat16 autocast eager, bfloat16 weights
  with autocast, eager, bfloat16 autocast + torch.compile (compile time reported apart).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time

import torch
from safetensors.torch import save_file

from .dit_onnx import text_encoder_graph, transformer_graph
from .export import model_json, random_model
from .model import Config, param_count
from .tokenizer import Tokenizer

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def tf32_off() -> None:
    """float32 stays float32 on the GPU (bfloat16 runs are unaffected)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def write_folder(model, cfg: Config, variant: str, out_dir: str) -> dict:
    """variant: a precision, or "<precision>-fused" (dit_onnx.py's fused attention and GELU)."""
    t0 = time.perf_counter()
    precision, _, fused = variant.partition("-")
    if precision not in DTYPES or fused not in ("", "fused"):
        raise ValueError(f"folder {variant!r}: expected a precision ({', '.join(DTYPES)}), optionally with '-fused'")
    os.makedirs(out_dir, exist_ok=True)
    graphs = {"text_encoder": text_encoder_graph(cfg, precision), "transformer": transformer_graph(cfg, precision, fused == "fused")}
    nbytes = 0
    for name, graph in graphs.items():
        with open(os.path.join(out_dir, f"{name}.onnx"), "wb") as f:
            f.write(graph.SerializeToString())
        sd = {k: v.detach().to(DTYPES[precision]).contiguous() for k, v in getattr(model, name).state_dict().items()}
        nbytes += sum(v.numel() * v.element_size() for v in sd.values())
        save_file(sd, os.path.join(out_dir, f"{name}.safetensors"), metadata={"component": name, "config": json.dumps(cfg.to_dict())})
    Tokenizer.default().save(os.path.join(out_dir, "tokenizer.json"))
    spec = {**model_json(cfg), "name": f"dit-d{cfg.depth}-{variant}"}
    with open(os.path.join(out_dir, "model.json"), "w") as f:  # last: a folder with model.json is complete
        json.dump(spec, f, indent=2)
        f.write("\n")
    return {"dir": out_dir, "weightBytes": nbytes, "seconds": round(time.perf_counter() - t0, 2)}


def step_inputs(cfg: Config, batch: int, device: str, seed: int):
    """Latents [B], text embeddings and pooled for 2B rows (conditional then unconditional), timestep [B]."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.image_size
    x = torch.randn(batch, cfg.channels, s, s, generator=g)
    ehs = torch.randn(2 * batch, cfg.max_length, cfg.text_dim, generator=g)
    pooled = torch.randn(2 * batch, cfg.pooled_dim, generator=g)
    t = torch.full((batch,), 750.0)
    return [v.to(device) for v in (x, ehs, pooled, t)]


def cfg_step(fn, x, ehs, pooled, t, guidance: float = 4.5, dt: float = -0.1):
    """One denoising step as the worker takes it: both CFG branches in one batch, then the Euler step."""
    v = fn(torch.cat([x, x]), ehs, pooled, torch.cat([t, t])).float()
    vc, vu = v.chunk(2)
    return x + dt * (vu + guidance * (vc - vu))


def time_steps(fn, inputs, device: str, warmup: int, reps: int) -> dict:
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(warmup):
            cfg_step(fn, *inputs)
        sync(device)
        first = time.perf_counter() - t0
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            cfg_step(fn, *inputs)
            sync(device)
            times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "all": [round(x, 5) for x in times], "warmupSeconds": round(first, 2)}


def autocast(device: str):
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def compiled(module, mode: str):
    """torch.compile of the whole transformer, or of each block ('regional': one compile reused
    by every block, a fraction of the compile time)."""
    if mode == "regional":
        for blk in module.blocks:
            blk.compile()
        return module
    return torch.compile(module)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=14)
    ap.add_argument("--dim", type=int, default=1152)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--image", type=int, default=64)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="images; the transformer runs 2 x batch rows (CFG)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--folders", default="float16,bfloat16", help="precisions to write model folders in, each optionally '-fused' (e.g. float16-fused; '' for none)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--compile", default="full", choices=["full", "regional", "off"])
    args = ap.parse_args(argv)

    cfg = Config(dim=args.dim, depth=args.depth, heads=args.heads, image_size=args.image, patch=args.patch)
    os.makedirs(args.out, exist_ok=True)
    tf32_off()
    t0 = time.perf_counter()
    model = random_model(cfg, args.seed)
    result = {
        "config": cfg.to_dict(), "parameters": param_count(model.transformer), "tokens": (args.image // args.patch) ** 2,
        "batch": args.batch, "rows": 2 * args.batch, "cfg": True, "device": args.device, "seed": args.seed,
        "torch": torch.__version__, "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "buildSeconds": round(time.perf_counter() - t0, 2), "folders": {}, "steps": {},
    }
    print(f"DiT depth {cfg.depth}: {result['parameters']:,} parameters, {result['tokens']} tokens", flush=True)
    for precision in filter(None, args.folders.split(",")):
        result["folders"][precision] = write_folder(model, cfg, precision, os.path.join(args.out, precision))
        print(f"folder {precision}: {result['folders'][precision]}", flush=True)

    dev = args.device
    dit = model.transformer.to(dev).eval()
    inputs = step_inputs(cfg, args.batch, dev, args.seed + 1)
    # reference: 2 rows, float32 (TF32 off) and bfloat16 autocast
    x, ehs, pooled, _ = step_inputs(cfg, 1, dev, args.seed + 2)
    ref_in = {"hidden_states": torch.cat([x, -x]), "encoder_hidden_states": ehs, "pooled_projections": pooled,
              "timestep": torch.tensor([750.0, 125.0], device=dev)}
    with torch.no_grad():
        ref = {"out_float32": dit(*ref_in.values()).float()}
        try:
            with autocast(dev):
                ref["out_bf16_autocast"] = dit(*ref_in.values()).float()
        except RuntimeError as e:  # torch 1.13's CPU autocast mixes dtypes in layer_norm
            result["referenceError"] = str(e)
    save_file({k: v.detach().cpu().contiguous() for k, v in {**ref_in, **ref}.items()}, os.path.join(args.out, "reference.safetensors"))

    def record(name, fn, **extra):
        try:
            result["steps"][name] = {**time_steps(fn, inputs, dev, args.warmup, args.reps), **extra}
            print(f"{name}: {result['steps'][name]['median']:.4f} s/step", flush=True)
        except Exception as e:  # one path failing leaves the others measured
            result["steps"][name] = {"error": f"{type(e).__name__}: {e}"[:2000]}
            print(f"{name}: failed: {result['steps'][name]['error']}", flush=True)
        write_json(args.out, result)  # after each: a later failure keeps what was measured

    record("float32", dit, tf32=False)

    def autocast_fn(module):
        def fn(*a):
            with autocast(dev):
                return module(*a)
        return fn
    record("bf16_autocast_eager", autocast_fn(dit))
    # weights held in bfloat16 (as the worker's bfloat16 folder holds them): autocast then casts no weights
    # per step; it is still needed, as model.py computes the timestep features in float32
    half = copy.deepcopy(dit).to(torch.bfloat16)
    record("bf16_weights_autocast_eager", autocast_fn(half))
    del half
    if args.compile == "off" or not hasattr(torch, "compile"):
        result["steps"]["bf16_autocast_compile"] = {"skipped": "--compile off" if args.compile == "off" else f"torch {torch.__version__} has no torch.compile"}
    else:
        record("bf16_autocast_compile", autocast_fn(compiled(dit, args.compile)), mode=args.compile)
    result["totalSeconds"] = round(time.perf_counter() - t0, 1)
    write_json(args.out, result)


def write_json(out: str, result: dict) -> None:
    with open(os.path.join(out, "torch.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
