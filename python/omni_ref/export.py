"""Exports a trained checkpoint to the model folder (docs/model-folder.md).

    python3 -m omni_ref.export --ckpt ckpt/shapes-dit.pt --out ../models/shapes-dit

Each component's graph takes its data inputs and then every parameter as a graph input named by
its PyTorch state-dict name (the graph holds only small constants); the weights go to
<component>.safetensors (float32) under the same names. Verified with onnxruntime (CPU) against
PyTorch (float32): max abs difference must be < 1e-4.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

from .model import Config, ShapesModel
from .tokenizer import Tokenizer

DATA_INPUTS = {
    "text_encoder": ["input_ids"],
    "transformer": ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"],
}
OUTPUTS = {
    "text_encoder": ["last_hidden_state", "pooler_output"],
    "transformer": ["out_hidden_states"],
}


class ParamsAsInputs(nn.Module):
    """forward(*data, *params) = module(*data) with the given parameter tensors (on a copy of the
    module whose parameters are replaced by plain attributes, so tracing records them as inputs)."""

    def __init__(self, module: nn.Module, n_data: int):
        super().__init__()
        import copy
        self.inner = [copy.deepcopy(module)]  # a list: not registered as a submodule
        self.n_data = n_data
        self.names = [k for k, _ in module.named_parameters()]
        self.slots = []
        for name in self.names:
            owner, _, leaf = name.rpartition(".")
            mod = self.inner[0].get_submodule(owner) if owner else self.inner[0]
            del mod._parameters[leaf]
            self.slots.append((mod, leaf))

    def forward(self, *args):
        data, params = args[: self.n_data], args[self.n_data:]
        for (mod, leaf), t in zip(self.slots, params):
            object.__setattr__(mod, leaf, t)
        return self.inner[0](*data)


def load_model(ckpt_path: str, which: str = "ema") -> ShapesModel:
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = ShapesModel(Config(**ck["config"]))
    model.load_state_dict(ck[which])
    return model.eval().float()


def random_model(cfg: Config, seed: int = 0) -> ShapesModel:
    """An untrained model of `cfg` (for timing), the same for the same seed on any machine (built on the CPU)."""
    torch.manual_seed(seed)
    model = ShapesModel(cfg).eval()
    with torch.no_grad():  # non-zero modulation so timing/verification exercise every path
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def example_inputs(cfg: Config, B: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tok = Tokenizer.default()
    ids = torch.tensor(tok(["a red circle at the top left on a white background", "", "a blue square",
                            "a green triangle and a yellow circle", "zebra"] * 2)[:B])
    s = cfg.image_size
    return {
        "input_ids": ids,
        "hidden_states": torch.randn(B, cfg.channels, s, s, generator=g),
        "encoder_hidden_states": torch.randn(B, cfg.max_length, cfg.text_dim, generator=g),
        "pooled_projections": torch.randn(B, cfg.pooled_dim, generator=g),
        "timestep": torch.rand(B, generator=g) * 1000,
    }


def export_component(module: nn.Module, name: str, cfg: Config, out_dir: str) -> dict:
    module = module.eval().float()
    sd = {k: v.detach().contiguous().float() for k, v in module.state_dict().items()}
    names = [k for k, _ in module.named_parameters()]
    assert sorted(names) == sorted(sd), f"{name}: state dict has non-parameter entries"
    wrapper = ParamsAsInputs(module, len(DATA_INPUTS[name]))
    ex = example_inputs(cfg, 2)
    args = tuple(ex[k] for k in DATA_INPUTS[name]) + tuple(sd[k] for k in names)
    graph_path = os.path.join(out_dir, f"{name}.onnx")
    dyn = {k: {0: "batch"} for k in DATA_INPUTS[name] + OUTPUTS[name]}
    torch.onnx.export(wrapper, args, graph_path, input_names=DATA_INPUTS[name] + names,
                      output_names=OUTPUTS[name], dynamic_axes=dyn, opset_version=17,
                      do_constant_folding=False, dynamo=False)
    save_file(sd, os.path.join(out_dir, f"{name}.safetensors"),
              metadata={"component": name, "config": json.dumps(cfg.to_dict())})
    import onnx
    m = onnx.load(graph_path)
    inputs = [i.name for i in m.graph.input]
    missing = [k for k in names if k not in inputs]
    assert not missing, f"{name}: parameters missing from graph inputs: {missing[:5]}"
    init_bytes = sum(np.prod(t.dims) * 4 for t in m.graph.initializer)
    print(f"{name}: {len(inputs)} inputs ({len(names)} parameters), {len(m.graph.initializer)} initializers "
          f"({init_bytes} bytes), {len(m.graph.node)} nodes", flush=True)
    return sd


def verify(module: nn.Module, name: str, cfg: Config, out_dir: str, tol: float = 1e-4) -> float:
    import onnxruntime as ort
    from safetensors.numpy import load_file
    w = load_file(os.path.join(out_dir, f"{name}.safetensors"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 4
    sess = ort.InferenceSession(os.path.join(out_dir, f"{name}.onnx"), so, providers=["CPUExecutionProvider"])
    worst = 0.0
    for B in (1, 3, 5):
        ex = example_inputs(cfg, B, seed=B)
        feed = {k: ex[k].numpy() for k in DATA_INPUTS[name]}
        feed.update(w)
        got = sess.run(OUTPUTS[name], feed)
        with torch.no_grad():
            ref = module(*[ex[k] for k in DATA_INPUTS[name]])
        ref = ref if isinstance(ref, tuple) else (ref,)
        for o, g, r in zip(OUTPUTS[name], got, ref):
            assert tuple(g.shape) == tuple(r.shape), (o, g.shape, r.shape)
            worst = max(worst, float(np.abs(g - r.numpy()).max()))
    print(f"{name}: onnxruntime vs PyTorch max abs diff {worst:.3g} (B = 1, 3, 5)", flush=True)
    assert worst < tol, f"{name}: ORT differs from PyTorch by {worst}"
    return worst


def model_json(cfg: Config) -> dict:
    return {
        "format": "omni-worker-model/1",
        "name": "shapes-dit",
        "tokenizer": "tokenizer.json",
        "components": {
            "text_encoder": {"graph": "text_encoder.onnx", "weights": "text_encoder.safetensors"},
            "transformer": {"graph": "transformer.onnx", "weights": "transformer.safetensors"},
        },
        "image": {"height": cfg.image_size, "width": cfg.image_size},
        "latent": {"channels": cfg.channels, "downscale": 1},
        "text": {"maxLength": cfg.max_length, "hiddenSize": cfg.text_dim, "pooledSize": cfg.pooled_dim},
        "scheduler": {"shift": 3.0},
        "defaults": {"steps": 10, "guidanceScale": 4.5},
    }


def export_model(model: ShapesModel, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    cfg = model.cfg
    torch.use_deterministic_algorithms(True)
    for name in ("text_encoder", "transformer"):
        mod = getattr(model, name)
        export_component(mod, name, cfg, out_dir)
        verify(mod, name, cfg, out_dir)
    Tokenizer.default().save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(model_json(cfg), f, indent=2)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", help="checkpoint from omni_ref.train (EMA weights are exported)")
    ap.add_argument("--random", help="export an untrained model of this JSON config instead (timing)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.random:
        model = random_model(Config(**json.loads(args.random)))
    else:
        model = load_model(args.ckpt)
    export_model(model, args.out)


if __name__ == "__main__":
    main()
