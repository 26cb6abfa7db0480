"""The task's reward from the scene classifier's logits (numpy only; no PyTorch).

reward `partial`: the fraction of the prompt's objects present with the right shape, colour and
place (GenEval-style partial credit, hard decisions). reward `dense`: the same credit per object
read from the classifier's probabilities on a log scale, 1 + max(log q, -L) / L with q = P(right
shape) x P(right colour) at the object's slot and L = 50: the untrained model never draws the third
object (partial credit is 2/3 for every sample, so a group has nothing to compare), but how
close its slot comes to the named object still differs between samples. reward `mixed`: partial +
MIXED_DENSE_WEIGHT x dense: within a group where every sample has the same objects right the dense
term orders them, and one sample that draws an object for real outranks any dense gain (the dense
reward alone can be raised by a blob that is no object). accurate = every object right (hard
decisions) in every mode. A positioned object must sit in
its own slot; an object without a position may take any slot no earlier object took.
The classifier (rewards/scene-classifier.onnx, per slot: shape, colour) reads three-object
renders as well as one- and two-object ones; see docs/flow-grpo.md for its measured accuracy.
"""
from __future__ import annotations

import numpy as np

from omni_ref.reward import parse_prompt
from omni_ref.scenes import COLOR_NAMES, POSITIONS, SHAPES


def object_hits(parsed: dict, shape_logits, color_logits) -> list:
    """One bool per prompted object (hard decisions: argmax per slot)."""
    shapes, colors = np.argmax(shape_logits, -1), np.argmax(color_logits, -1)
    used = set()
    # positioned objects first: their slot is fixed, the free ones take what is left
    order = sorted(range(len(parsed["objects"])), key=lambda i: parsed["objects"][i]["position"] is None)
    result = [False] * len(parsed["objects"])
    for i in order:
        o = parsed["objects"][i]
        want_shape = 1 + SHAPES.index(o["shape"])
        want_color = COLOR_NAMES.index(o["color"]) if o["color"] else None
        slots = [POSITIONS.index(o["position"])] if o["position"] else range(len(shapes))
        for s in slots:
            if s not in used and shapes[s] == want_shape and (want_color is None or colors[s] == want_color):
                used.add(s)
                result[i] = True
                break
    return result


DENSE_FLOOR = 50.0
MIXED_DENSE_WEIGHT = 0.25
REWARDS = ("partial", "dense", "mixed")


def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def dense_credit(parsed: dict, shape_logits, color_logits) -> float:
    """Mean over objects of 1 + max(log q, -L) / L (positioned objects at their slot; an object
    without a position at its best slot)."""
    ls, lc = _log_softmax(shape_logits), _log_softmax(color_logits)
    credit = []
    for o in parsed["objects"]:
        slots = [POSITIONS.index(o["position"])] if o["position"] else range(len(ls))
        k = 1 + SHAPES.index(o["shape"])
        logq = max(ls[s, k] + (lc[s, COLOR_NAMES.index(o["color"])] if o["color"] else 0.0) for s in slots)
        credit.append(1.0 + max(logq, -DENSE_FLOOR) / DENSE_FLOOR)
    return float(np.mean(credit))


def score(prompts, shape_logits, color_logits, reward: str = "partial"):
    """(rewards float32 [B], accurate bool [B]) for B images' logits [B,5,4], [B,5,6]."""
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
    if len(prompts) != len(shape_logits) or len(prompts) != len(color_logits):
        raise ValueError(f"{len(prompts)} prompts for {len(shape_logits)} / {len(color_logits)} images' logits")
    rewards = np.zeros(len(prompts), dtype=np.float32)
    accurate = np.zeros(len(prompts), dtype=bool)
    for b, p in enumerate(prompts):
        parsed = parse_prompt(p)
        if not parsed["objects"]:
            raise ValueError(f"prompt {b} names no object: {p!r}")
        hits = object_hits(parsed, shape_logits[b], color_logits[b])
        partial = sum(hits) / len(hits)
        if reward == "partial":
            rewards[b] = partial
        else:
            dense = dense_credit(parsed, shape_logits[b], color_logits[b])
            rewards[b] = dense if reward == "dense" else partial + MIXED_DENSE_WEIGHT * dense
        accurate[b] = all(hits)
    return rewards, accurate
