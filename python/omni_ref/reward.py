"""Scene-alignment scoring (the Python twin of rewards/scene-alignment.ts).

parse_prompt: words /[a-z0-9]+/ of the lowercased prompt, read left to right: a colour word is held
until the next shape word, which starts an object (shape, colour or None); "top|bottom left|right"
and "center|centre|middle" set the position of the last object (or of the next one if none yet);
"<colour> background" sets the background. Sizes are parsed but not scored.
score: attributes = per object shape, colour (if named), position (if named); background (if
named). Objects are matched to distinct classifier slots, maximising matched attributes;
score = matched / attributes (0 when the prompt names nothing). hard: argmax decisions; soft:
probabilities (occupancy-weighted).
"""
from __future__ import annotations

import itertools
import re

import numpy as np

from .scenes import BACKGROUND_NAMES, COLOR_NAMES, POSITIONS, SHAPES

_WORD = re.compile(r"[a-z0-9]+")
_CENTER = {"center", "centre", "middle"}


def parse_prompt(text: str) -> dict:
    words = _WORD.findall(text.lower())
    objects, bg, pending_color, pending_pos, last_color = [], None, None, None, None
    i = 0
    while i < len(words):
        w = words[i]
        if w == "background":
            if last_color in BACKGROUND_NAMES:
                bg = last_color
            pending_color = None
        elif w in COLOR_NAMES or w in BACKGROUND_NAMES:
            pending_color = w
            last_color = w
        elif w in SHAPES:
            color = pending_color if pending_color in COLOR_NAMES else None
            objects.append({"shape": w, "color": color, "position": pending_pos})
            pending_color, pending_pos = None, None
        elif w in ("top", "bottom") and i + 1 < len(words) and words[i + 1] in ("left", "right"):
            pos = f"{w} {words[i + 1]}"
            i += 1
            if objects and objects[-1]["position"] is None:
                objects[-1]["position"] = pos
            else:
                pending_pos = pos
        elif w in _CENTER:
            if objects and objects[-1]["position"] is None:
                objects[-1]["position"] = "center"
            else:
                pending_pos = "center"
        i += 1
    return {"objects": objects[: len(POSITIONS)], "background": bg}


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def score_one(parsed: dict, shape_logits, color_logits, bg_logits, mode: str = "hard") -> float:
    """Logits of one image: [5,4], [5,6], [3]."""
    objs = parsed["objects"]
    n_attr = sum(1 + (o["color"] is not None) + (o["position"] is not None) for o in objs)
    n_attr += parsed["background"] is not None
    if n_attr == 0:
        return 0.0
    sp, cp, bp = softmax(shape_logits), softmax(color_logits), softmax(bg_logits)
    if mode == "hard":
        sh, co, bgi = shape_logits.argmax(-1), color_logits.argmax(-1), bg_logits.argmax(-1)
        occ = (sh != 0).astype(np.float64)
    else:
        occ = 1.0 - sp[:, 0]
    n_slots = shape_logits.shape[0]
    # m[o, s]: attributes of object o matched if it sits in slot s
    m = np.zeros((len(objs), n_slots))
    for oi, o in enumerate(objs):
        k = 1 + SHAPES.index(o["shape"])
        c = COLOR_NAMES.index(o["color"]) if o["color"] is not None else None
        p = POSITIONS.index(o["position"]) if o["position"] is not None else None
        for s in range(n_slots):
            if mode == "hard":
                v = float(sh[s] == k) + (float(occ[s] and co[s] == c) if c is not None else 0.0)
            else:
                v = sp[s, k] + (occ[s] * cp[s, c] if c is not None else 0.0)
            if p is not None:
                v += occ[s] * float(s == p)
            m[oi, s] = v
    best = 0.0
    for perm in itertools.permutations(range(n_slots), len(objs)):
        best = max(best, sum(m[o, s] for o, s in enumerate(perm)))
    if parsed["background"] is not None:
        b = BACKGROUND_NAMES.index(parsed["background"])
        best += float(bgi == b) if mode == "hard" else bp[b]
    return float(best / n_attr)


def shape_color_right(parsed: dict, shape_logits, color_logits) -> bool:
    """Every prompted object has its shape and colour (at its slot if positioned), hard decisions."""
    sh, co = shape_logits.argmax(-1), color_logits.argmax(-1)
    used = set()
    for o in parsed["objects"]:
        k = 1 + SHAPES.index(o["shape"])
        c = COLOR_NAMES.index(o["color"]) if o["color"] else None
        slots = [POSITIONS.index(o["position"])] if o["position"] else range(len(sh))
        ok = [s for s in slots if s not in used and sh[s] == k and (c is None or co[s] == c)]
        if not ok:
            return False
        used.add(ok[0])
    return True
