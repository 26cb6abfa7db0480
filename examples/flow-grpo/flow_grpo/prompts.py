"""The task's prompts: three objects in three distinct corners, distinct colours.

"a red circle at the top left and a blue square at the top right and a green triangle at the
bottom left" is 23 words: with <bos> it fills the text encoder's 24 tokens exactly, so these
prompts carry no size and no background. The model was trained on one- and two-object scenes
only; three objects are new to it.
"""
from __future__ import annotations

import itertools
import random

SHAPES = ("circle", "square", "triangle")
COLORS = ("red", "green", "blue", "yellow", "purple", "orange")
CORNERS = ("top left", "top right", "bottom left", "bottom right")
MAX_WORDS = 23  # the tokenizer's 24 ids less <bos>


def object_phrase(color: str, shape: str, corner: str) -> str:
    article = "an" if color[0] in "aeiou" else "a"
    return f"{article} {color} {shape} at the {corner}"


def three_object_prompt(objects) -> str:
    """objects: three (color, shape, corner) triples."""
    if len(objects) != 3:
        raise ValueError(f"three objects expected, got {len(objects)}")
    text = " and ".join(object_phrase(*o) for o in objects)
    if len(text.split()) > MAX_WORDS:
        raise ValueError(f"prompt of {len(text.split())} words exceeds {MAX_WORDS}: {text!r}")
    return text


def all_three_object_prompts() -> list:
    """Every prompt of the grammar: corners in reading order, distinct colours (8,640 x 27 shapes)."""
    out = []
    for corners in itertools.combinations(CORNERS, 3):
        for colors in itertools.permutations(COLORS, 3):
            for shapes in itertools.product(SHAPES, repeat=3):
                out.append(three_object_prompt(list(zip(colors, shapes, corners))))
    return out


def split_prompts(n_heldout: int, seed: int = 0):
    """(train, heldout): a seeded shuffle of every prompt; the held-out ones never train."""
    prompts = all_three_object_prompts()
    random.Random(seed).shuffle(prompts)
    return prompts[n_heldout:], prompts[:n_heldout]


def read_prompt_file(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]
