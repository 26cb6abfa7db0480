"""model.py's text encoder and DiT as ONNX graphs in a chosen precision, written node by node.

The model folder contract (docs/model-folder.md): every parameter is a graph input named by its
state-dict name, in the graph's precision (float32, float16 or bfloat16); data inputs and outputs
stay float32 with Casts inside the graph, as the worker's half-precision loader expects
(docs/gpu-design.md, "Half precision"). Written with onnx.helper rather than torch.onnx.export so
that one code path gives all three precisions on any torch (tracing a float16 model needs half
kernels on the tracing device) and the choice of ops is ours:
- patch embedding as patchify + MatMul (ONNX's Conv takes no bfloat16 before opset 22);
- the sinusoidal timestep features, the text padding bias and the pooled mean in float32;
- everything else (MatMul, Softmax, LayerNormalization, Tanh, Sigmoid, Add, Mul) in the graph's
  precision, all of which ONNX Runtime's CUDA provider runs in float16 and bfloat16.
`fused=True` (a "<precision>-fused" folder of bench_dit) writes the DiT blocks' attention as ONNX
Runtime's `com.microsoft.MultiHeadAttention` (its fused / flash attention kernels on CUDA: no
[rows, heads, N, N] score tensor in memory) and their GELU as `com.microsoft.FastGelu` (one
kernel for the tanh approximation's eight ops); the same function as the plain graph.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .model import Config

PRECISION_ONNX = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
OPSET = 17
MS_DOMAIN = "com.microsoft"


class Graph:
    """Nodes, inputs, outputs and constants of one graph; parameters in `precision`."""

    def __init__(self, name: str, precision: str):
        self.name, self.precision, self.dt = name, precision, PRECISION_ONNX[precision]
        self.nodes, self.inputs, self.outputs, self.inits = [], [], [], []
        self.n = 0
        self.contrib = False  # a com.microsoft op was written: the model imports that domain

    def fresh(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def input(self, name: str, elem: int, dims) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, dims))
        return name

    def param(self, name: str, shape) -> str:
        return self.input(name, self.dt, list(shape))

    def output(self, x: str, name: str, dims) -> None:
        """Hands x out as float32 under `name`."""
        self.op("Cast", [x], to=TensorProto.FLOAT, out=name)
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))

    def op(self, op_type: str, inputs, out: str | None = None, domain: str = "", **attrs) -> str:
        out = out or self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, domain=domain or None, **attrs))
        self.contrib |= domain == MS_DOMAIN
        return out

    def ops(self, op_type: str, inputs, n: int, **attrs) -> list:
        outs = [self.fresh(op_type.lower()) for _ in range(n)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=outs[0], **attrs))
        return outs

    def const(self, value, elem: int | None = None) -> str:
        """A constant initializer: int64 arrays as given, floats in `elem` (the graph's precision by default)."""
        name = self.fresh("const")
        arr = np.asarray(value)
        if arr.dtype.kind in "iu":
            self.inits.append(numpy_helper.from_array(arr.astype(np.int64), name))
            return name
        elem = self.dt if elem is None else elem
        if elem == TensorProto.BFLOAT16:  # numpy has no bfloat16: round float32 bits to nearest even
            bits = arr.astype(np.float32).reshape(-1).view(np.uint32)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            t = helper.make_tensor(name, elem, arr.shape, rounded.tobytes(), raw=True)
        else:
            t = numpy_helper.from_array(arr.astype(np.float16 if elem == TensorProto.FLOAT16 else np.float32), name)
        self.inits.append(t)
        return name

    def to_half(self, x: str) -> str:
        """A float32 value in the graph's precision."""
        return x if self.dt == TensorProto.FLOAT else self.op("Cast", [x], to=self.dt)

    def to_float(self, x: str) -> str:
        return x if self.dt == TensorProto.FLOAT else self.op("Cast", [x], to=TensorProto.FLOAT)

    # -- layers, named as model.py's modules --------------------------------------------------
    def linear(self, x: str, prefix: str, shape) -> str:
        """x W^T + b with W [out, in], as nn.Linear."""
        w = self.param(f"{prefix}.weight", shape)
        b = self.param(f"{prefix}.bias", shape[:1])
        return self.op("Add", [self.op("MatMul", [x, self.op("Transpose", [w], perm=[1, 0])]), b])

    def layer_norm(self, x: str, dim: int, eps: float, prefix: str | None = None) -> str:
        if prefix:  # elementwise affine
            scale, bias = self.param(f"{prefix}.weight", [dim]), self.param(f"{prefix}.bias", [dim])
        else:
            scale, bias = self.const(np.ones(dim, np.float32)), self.const(np.zeros(dim, np.float32))
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)

    def silu(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def gelu_tanh(self, x: str) -> str:
        """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): F.gelu(approximate='tanh')."""
        cube = self.op("Mul", [self.op("Mul", [x, x]), x])
        inner = self.op("Mul", [self.op("Add", [x, self.op("Mul", [cube, self.const(0.044715)])]), self.const(math.sqrt(2 / math.pi))])
        return self.op("Mul", [self.op("Mul", [x, self.const(0.5)]), self.op("Add", [self.op("Tanh", [inner]), self.const(1.0)])])

    def mlp(self, x: str, prefix: str, dim: int, hidden: int, fused: bool = False) -> str:
        h = self.linear(x, f"{prefix}.fc1", [hidden, dim])
        h = self.op("FastGelu", [h], domain=MS_DOMAIN) if fused else self.gelu_tanh(h)
        return self.linear(h, f"{prefix}.fc2", [dim, hidden])

    def heads(self, x: str, heads: int, dim: int, perm) -> str:
        """[B, N, dim] -> [B, heads, N, dim / heads] (perm [0, 2, 1, 3]) or its key layout ([0, 2, 3, 1])."""
        return self.op("Transpose", [self.op("Reshape", [x, self.const([0, -1, heads, dim // heads])])], perm=perm)

    def attention(self, q: str, k: str, v: str, heads: int, dim: int, bias: str | None = None) -> str:
        """model.attention over heads, merged back to [B, N, dim]."""
        scores = self.op("Mul", [self.op("MatMul", [self.heads(q, heads, dim, [0, 2, 1, 3]), self.heads(k, heads, dim, [0, 2, 3, 1])]),
                                 self.const(1.0 / math.sqrt(dim // heads))])
        if bias is not None:
            scores = self.op("Add", [scores, bias])
        h = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), self.heads(v, heads, dim, [0, 2, 1, 3])])
        return self.op("Reshape", [self.op("Transpose", [h], perm=[0, 2, 1, 3]), self.const([0, -1, dim])])

    def fused_attention(self, q: str, k: str, v: str, heads: int) -> str:
        """The same attention (scale 1 / sqrt(head size)) as one MultiHeadAttention: [B, N, dim] in and out."""
        return self.op("MultiHeadAttention", [q, k, v], domain=MS_DOMAIN, num_heads=heads)

    def chunk(self, x: str, n: int, size: int) -> list:
        return self.ops("Split", [x, self.const([size] * n)], n, axis=-1)

    def model(self) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid(MS_DOMAIN, 1)] if self.contrib else [])
        m = helper.make_model(g, producer_name="omni_ref.dit_onnx", opset_imports=opsets)
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def text_encoder_graph(cfg: Config, precision: str, pad_id: int = 0) -> onnx.ModelProto:
    g = Graph("text_encoder", precision)
    D, L = cfg.text_dim, cfg.max_length
    ids = g.input("input_ids", TensorProto.INT64, ["batch", L])
    emb = g.param("token_embedding.weight", [cfg.vocab_size, D])
    pos = g.param("position_embedding", [1, L, D])
    keep32 = g.op("Cast", [g.op("Not", [g.op("Equal", [ids, g.const(np.array(pad_id))])])], to=TensorProto.FLOAT)  # [B, L]
    # (1 - keep) * -1e9 in float32, then the graph's precision (-inf in float16: exp gives 0 all the same)
    bias = g.to_half(g.op("Mul", [g.op("Sub", [keep32, g.const(1.0, TensorProto.FLOAT)]), g.const(1e9, TensorProto.FLOAT)]))
    bias = g.op("Unsqueeze", [bias, g.const([1, 2])])  # [B, 1, 1, L]
    x = g.op("Add", [g.op("Gather", [emb, ids], axis=0), pos])
    for i in range(cfg.text_depth):
        p = f"layers.{i}"
        q, k, v = g.chunk(g.linear(g.layer_norm(x, D, 1e-5, f"{p}.norm1"), f"{p}.qkv", [3 * D, D]), 3, D)
        x = g.op("Add", [x, g.linear(g.attention(q, k, v, cfg.text_heads, D, bias), f"{p}.proj", [D, D])])
        x = g.op("Add", [x, g.mlp(g.layer_norm(x, D, 1e-5, f"{p}.norm2"), f"{p}.mlp", D, 4 * D)])
    keep = g.op("Unsqueeze", [keep32, g.const([2])])  # [B, L, 1]
    x = g.op("Mul", [g.layer_norm(x, D, 1e-5, "final_norm"), g.to_half(keep)])
    g.output(x, "last_hidden_state", ["batch", L, D])
    # the masked mean in float32 (a sum of L values), then the pooler in the graph's precision
    axis = g.const([1])
    mean = g.op("Div", [g.op("ReduceSum", [g.to_float(x), axis], keepdims=0), g.op("ReduceSum", [keep, axis], keepdims=0)])
    g.output(g.linear(g.to_half(mean), "pooler", [cfg.pooled_dim, D]), "pooler_output", ["batch", cfg.pooled_dim])
    return g.model()


def transformer_graph(cfg: Config, precision: str, fused: bool = False) -> onnx.ModelProto:
    g = Graph("transformer", precision)
    d, p, C, S = cfg.dim, cfg.patch, cfg.channels, cfg.image_size
    grid, N = S // p, (S // p) ** 2
    hs = g.input("hidden_states", TensorProto.FLOAT, ["batch", C, S, S])
    ehs = g.to_half(g.input("encoder_hidden_states", TensorProto.FLOAT, ["batch", cfg.max_length, cfg.text_dim]))
    pooled = g.to_half(g.input("pooled_projections", TensorProto.FLOAT, ["batch", cfg.pooled_dim]))
    t = g.input("timestep", TensorProto.FLOAT, ["batch"])

    # patch_embed (Conv2d, kernel = stride = p) as patchify + MatMul: the same sums, no Conv kernel needed
    patches = g.op("Transpose", [g.op("Reshape", [g.to_half(hs), g.const([0, C, grid, p, grid, p])])], perm=[0, 2, 4, 1, 3, 5])
    patches = g.op("Reshape", [patches, g.const([0, N, C * p * p])])
    w = g.op("Reshape", [g.param("patch_embed.weight", [d, C, p, p]), g.const([d, C * p * p])])
    x = g.op("Add", [g.op("MatMul", [patches, g.op("Transpose", [w], perm=[1, 0])]), g.param("patch_embed.bias", [d])])
    x = g.op("Add", [x, g.param("pos_embed", [1, N, d])])

    # timestep features in float32 (timestep up to 1000 times frequencies), as model.py's buffer
    half = cfg.freq_dim // 2
    freqs = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half).astype(np.float32)
    args = g.op("Mul", [g.op("Unsqueeze", [t, g.const([1])]), g.const(freqs[None], TensorProto.FLOAT)])
    feats = g.to_half(g.op("Concat", [g.op("Cos", [args]), g.op("Sin", [args])], axis=-1))
    t_emb = g.linear(g.silu(g.linear(feats, "time_mlp.0", [d, cfg.freq_dim])), "time_mlp.2", [d, d])
    pooled_emb = g.linear(g.silu(g.linear(pooled, "pooled_mlp.0", [d, cfg.pooled_dim])), "pooled_mlp.2", [d, d])
    c = g.silu(g.op("Add", [t_emb, pooled_emb]))
    ctx = g.layer_norm(g.linear(ehs, "context_proj", [d, cfg.text_dim]), d, 1e-5, "context_norm")

    def modulate(y, shift, scale):
        return g.op("Add", [g.op("Mul", [y, g.op("Add", [scale, g.const(1.0)])]), shift])

    one = g.const([1])
    hidden = int(d * cfg.mlp_ratio)
    for i in range(cfg.depth):
        b = f"blocks.{i}"
        ada = g.op("Unsqueeze", [g.linear(c, f"{b}.adaLN", [6 * d, d]), one])
        sh1, sc1, g1, sh2, sc2, g2 = g.chunk(ada, 6, d)
        q, k, v = g.chunk(g.linear(modulate(g.layer_norm(x, d, 1e-6), sh1, sc1), f"{b}.qkv", [3 * d, d]), 3, d)
        ck, cv = g.chunk(g.linear(ctx, f"{b}.context_kv", [2 * d, d]), 2, d)
        k, v = g.op("Concat", [k, ck], axis=1), g.op("Concat", [v, cv], axis=1)
        a = g.fused_attention(q, k, v, cfg.heads) if fused else g.attention(q, k, v, cfg.heads, d)
        h = g.linear(a, f"{b}.proj", [d, d])
        x = g.op("Add", [x, g.op("Mul", [g1, h])])
        m = g.mlp(modulate(g.layer_norm(x, d, 1e-6), sh2, sc2), f"{b}.mlp", d, hidden, fused)
        x = g.op("Add", [x, g.op("Mul", [g2, m])])
    shift, scale = g.chunk(g.op("Unsqueeze", [g.linear(c, "final_adaLN", [2 * d, d]), one]), 2, d)
    y = g.linear(modulate(g.layer_norm(x, d, 1e-6), shift, scale), "final_linear", [p * p * C, d])  # [B, N, p*p*C]
    y = g.op("Transpose", [g.op("Reshape", [y, g.const([-1, grid, grid, p, p, C])])], perm=[0, 5, 1, 3, 2, 4])
    g.output(g.op("Reshape", [y, g.const([-1, C, S, S])]), "out_hidden_states", ["batch", C, S, S])
    return g.model()
