"""shapes-dit: a small SD3-family text-to-image model in pixel space.

TextEncoder: token + position embeddings, pre-LN transformer layers with pad-masked
self-attention, final LayerNorm; last_hidden_state [B, L, D] (pad positions zeroed) and
pooler_output [B, P] = Linear(masked mean of last_hidden_state).

DiT (transformer): 4x4 patches of the 32x32x3 latent (= image in [-1, 1]) -> 64 tokens + learned
position embeddings; conditioning c = MLP(sinusoidal(timestep)) + MLP(pooled_projections) with
timestep = sigma * 1000; each block is adaLN-Zero (shift/scale/gate from SiLU(c)) around
(1) joint attention: image-token queries attend to image tokens and to the text tokens (text
keys/values from LayerNorm(Linear(encoder_hidden_states)), SD3-style context tokens), and (2) a GELU
MLP; final adaLN + linear back to patches. Output: the velocity v = noise - x0.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 30
    max_length: int = 24
    text_dim: int = 128
    text_depth: int = 2
    text_heads: int = 4
    pooled_dim: int = 128
    image_size: int = 32
    channels: int = 3
    patch: int = 4
    dim: int = 160
    depth: int = 6
    heads: int = 5
    mlp_ratio: float = 4.0
    freq_dim: int = 256

    def to_dict(self):
        return asdict(self)


def attention(q, k, v, bias=None):
    """q [B,H,N,d], k/v [B,H,M,d]; bias broadcastable to [B,H,N,M]."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        scores = scores + bias
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def split_heads(x, heads):
    B, N, C = x.shape
    return x.reshape(B, N, heads, C // heads).transpose(1, 2)


def merge_heads(x):
    B, H, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, H * d)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class EncoderLayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x, bias):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        h = attention(split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads), bias)
        x = x + self.proj(merge_heads(h))
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    def __init__(self, cfg: Config, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_dim)
        self.position_embedding = nn.Parameter(torch.randn(1, cfg.max_length, cfg.text_dim) * 0.02)
        self.layers = nn.ModuleList([EncoderLayer(cfg.text_dim, cfg.text_heads) for _ in range(cfg.text_depth)])
        self.final_norm = nn.LayerNorm(cfg.text_dim)
        self.pooler = nn.Linear(cfg.text_dim, cfg.pooled_dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def forward(self, input_ids):
        keep = (input_ids != self.pad_id).to(torch.float32)  # [B, L]
        x = self.token_embedding(input_ids) + self.position_embedding[:, : input_ids.shape[1]]
        bias = ((1.0 - keep) * -1e9)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        x = self.final_norm(x) * keep[..., None]
        pooled = self.pooler(x.sum(dim=1) / keep.sum(dim=1, keepdim=True))
        return x, pooled


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.context_kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.adaLN.weight)
        nn.init.zeros_(self.adaLN.bias)

    def forward(self, x, ctx, c):
        sh1, sc1, g1, sh2, sc2, g2 = self.adaLN(c)[:, None, :].chunk(6, dim=-1)
        q, k, v = self.qkv(modulate(self.norm1(x), sh1, sc1)).chunk(3, dim=-1)
        ck, cv = self.context_kv(ctx).chunk(2, dim=-1)
        k = torch.cat([k, ck], dim=1)
        v = torch.cat([v, cv], dim=1)
        h = attention(split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads))
        x = x + g1 * self.proj(merge_heads(h))
        return x + g2 * self.mlp(modulate(self.norm2(x), sh2, sc2))


def sincos_2d(dim, grid):
    """Fixed 2D sin-cos position embedding [grid*grid, dim] (initial value of pos_embed)."""
    def one(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    half = dim // 2
    return torch.cat([one(half, ys), one(dim - half, xs)], dim=1).float()


class DiT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.dim, cfg.patch
        self.grid = cfg.image_size // p
        self.patch_embed = nn.Conv2d(cfg.channels, d, p, stride=p)
        self.pos_embed = nn.Parameter(sincos_2d(d, self.grid)[None])
        half = cfg.freq_dim // 2
        self.register_buffer(
            "time_freqs", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half).float(),
            persistent=False)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.pooled_mlp = nn.Sequential(nn.Linear(cfg.pooled_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.context_proj = nn.Linear(cfg.text_dim, d)
        self.context_norm = nn.LayerNorm(d)
        self.blocks = nn.ModuleList([DiTBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_adaLN = nn.Linear(d, 2 * d)
        self.final_linear = nn.Linear(d, p * p * cfg.channels)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for blk in self.blocks:
            nn.init.zeros_(blk.adaLN.weight)
            nn.init.zeros_(blk.adaLN.bias)
        for m in (self.final_adaLN, self.final_linear):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, hidden_states, encoder_hidden_states, pooled_projections, timestep):
        cfg, g, p = self.cfg, self.grid, self.cfg.patch
        x = self.patch_embed(hidden_states).flatten(2).transpose(1, 2) + self.pos_embed  # [B, N, d]
        args = timestep.to(torch.float32)[:, None] * self.time_freqs[None]
        t_emb = self.time_mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))
        c = F.silu(t_emb + self.pooled_mlp(pooled_projections))
        ctx = self.context_norm(self.context_proj(encoder_hidden_states))
        for blk in self.blocks:
            x = blk(x, ctx, c)
        shift, scale = self.final_adaLN(c)[:, None, :].chunk(2, dim=-1)
        x = self.final_linear(modulate(self.final_norm(x), shift, scale))  # [B, N, p*p*C]
        x = x.reshape(-1, g, g, p, p, cfg.channels).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(-1, cfg.channels, g * p, g * p)


class ShapesModel(nn.Module):
    """Both components; state-dict prefixes `text_encoder.` and `transformer.` are stripped on export."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.text_encoder = TextEncoder(cfg)
        self.transformer = DiT(cfg)


def param_count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
