"""Seeded synthetic scenes: 32x32 RGB images of one or two flat shapes with captions.

A scene has a background colour and one object (any of 5 positions) or two objects (two distinct
corners, distinct colours). Each object has a shape, a colour, a size and a position. Rendering is
4x supersampled (anti-aliased edges), vectorised over a batch in numpy, and fully determined by the
seed. Captions are drawn per scene from a small grammar, sometimes omitting size, position or
background, so that short prompts ("a red circle") and long ones both work:

    "a red circle at the top left on a white background"
    "a small blue square"
    "a green triangle at the bottom right and a yellow circle at the top left on a black background"

Labels (per position slot: shape or none, colour; background colour) train the reward classifier.
"""
from __future__ import annotations

import numpy as np

IMAGE_SIZE = 32
SHAPES = ["circle", "square", "triangle"]
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}
COLOR_NAMES = list(COLORS)
BACKGROUNDS = {"white": (245, 245, 245), "black": (20, 20, 20), "gray": (128, 128, 128)}
BACKGROUND_NAMES = list(BACKGROUNDS)
POSITIONS = ["top left", "top right", "bottom left", "bottom right", "center"]
# slot centres (x, y) in pixels, image 32x32
POSITION_CENTERS = [(8.0, 8.0), (24.0, 8.0), (8.0, 24.0), (24.0, 24.0), (16.0, 16.0)]
SIZES = ["small", "large"]
SIZE_RADIUS = {"small": (4.0, 5.0), "large": (6.0, 7.0)}  # half extent range in pixels
POSITION_PHRASE = {
    "top left": "at the top left",
    "top right": "at the top right",
    "bottom left": "at the bottom left",
    "bottom right": "at the bottom right",
    "center": "in the center",
}
# every word the captions can contain (the tokenizer's vocabulary)
VOCAB_WORDS = sorted(
    {"a", "an", "and", "at", "the", "in", "on", "background"}
    | set(SHAPES) | set(COLOR_NAMES) | set(BACKGROUND_NAMES) | set(SIZES)
    | {w for p in POSITION_PHRASE.values() for w in p.split()}
)


def sample_scenes(n: int, seed: int) -> dict:
    """Draws n scene descriptions. Returns arrays (int64 unless said):
    n_obj [n], shape [n,2], color [n,2], size [n,2] (0 small, 1 large), pos [n,2],
    radius [n,2] f32, cx [n,2] f32, cy [n,2] f32, bg [n]. Unused second object: shape -1."""
    rng = np.random.default_rng(seed)
    n_obj = np.where(rng.random(n) < 0.6, 1, 2)
    shape = rng.integers(0, len(SHAPES), size=(n, 2))
    color = rng.integers(0, len(COLORS), size=(n, 2))
    # distinct colours for the two objects
    clash = color[:, 1] == color[:, 0]
    color[clash, 1] = (color[clash, 1] + rng.integers(1, len(COLORS), size=clash.sum())) % len(COLORS)
    size = rng.integers(0, 2, size=(n, 2))
    pos = np.zeros((n, 2), dtype=np.int64)
    pos[:, 0] = rng.integers(0, 5, size=n)
    corners = np.stack([rng.permutation(4)[:2] for _ in range(n)])
    two = n_obj == 2
    pos[two] = corners[two]
    pos[~two, 1] = -1
    shape[~two, 1] = -1
    color[~two, 1] = -1
    size[~two, 1] = -1
    lo = np.array([SIZE_RADIUS[s][0] for s in SIZES])
    hi = np.array([SIZE_RADIUS[s][1] for s in SIZES])
    u = rng.random((n, 2))
    radius = (lo[np.clip(size, 0, 1)] + u * (hi - lo)[np.clip(size, 0, 1)]).astype(np.float32)
    centers = np.array(POSITION_CENTERS, dtype=np.float32)
    jitter = rng.uniform(-1.5, 1.5, size=(n, 2, 2)).astype(np.float32)
    cx = centers[np.clip(pos, 0, 4), 0] + jitter[..., 0]
    cy = centers[np.clip(pos, 0, 4), 1] + jitter[..., 1]
    bg = rng.integers(0, len(BACKGROUNDS), size=n)
    return dict(n_obj=n_obj, shape=shape, color=color, size=size, pos=pos, radius=radius,
                cx=cx.astype(np.float32), cy=cy.astype(np.float32), bg=bg)


def _masks(shape, cx, cy, r, X, Y):
    """Coverage masks [b, S, S] for one object per scene (shape -1: empty)."""
    cx = cx[:, None, None]; cy = cy[:, None, None]; r = r[:, None, None]
    dx = X[None] - cx
    dy = Y[None] - cy
    circle = dx * dx + dy * dy <= r * r
    half = r * 0.88
    square = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    # upward triangle: apex (cx, cy - r), base corners (cx -+ r, cy + 0.8 r)
    ax, ay = cx, cy - r
    bx, by = cx - r, cy + 0.8 * r
    qx, qy = cx + r, cy + 0.8 * r

    def side(px, py, x1, y1, x2, y2):
        return (px - x2) * (y1 - y2) - (x1 - x2) * (py - y2)

    Xb, Yb = X[None], Y[None]
    d1 = side(Xb, Yb, ax, ay, bx, by)
    d2 = side(Xb, Yb, bx, by, qx, qy)
    d3 = side(Xb, Yb, qx, qy, ax, ay)
    neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    triangle = ~(neg & pos)
    s = shape[:, None, None]
    return np.where(s == 0, circle, np.where(s == 1, square, np.where(s == 2, triangle, False)))


def render(scenes: dict, supersample: int = 4, chunk: int = 512) -> np.ndarray:
    """Renders scenes to uint8 images [n, 3, 32, 32] (NCHW)."""
    n = len(scenes["bg"])
    S = IMAGE_SIZE * supersample
    coords = (np.arange(S, dtype=np.float32) + 0.5) / supersample
    X, Y = np.meshgrid(coords, coords)  # X varies along width
    bg_rgb = np.array([BACKGROUNDS[b] for b in BACKGROUND_NAMES], dtype=np.float32)
    fg_rgb = np.array([COLORS[c] for c in COLOR_NAMES], dtype=np.float32)
    out = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for s0 in range(0, n, chunk):
        sl = slice(s0, min(n, s0 + chunk))
        b = sl.stop - sl.start
        img = np.broadcast_to(bg_rgb[scenes["bg"][sl]][:, :, None, None], (b, 3, S, S)).copy()
        for k in range(scenes["shape"].shape[1]):  # objects per scene (2 here; more elsewhere)
            m = _masks(scenes["shape"][sl, k], scenes["cx"][sl, k], scenes["cy"][sl, k],
                       scenes["radius"][sl, k], X, Y)
            col = fg_rgb[np.clip(scenes["color"][sl, k], 0, None)][:, :, None, None]
            img = np.where(m[:, None], col, img)
        img = img.reshape(b, 3, IMAGE_SIZE, supersample, IMAGE_SIZE, supersample).mean(axis=(3, 5))
        out[sl] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def slot_labels(scenes: dict):
    """Classifier targets: slot_shape [n,5] (0 none, 1+shape), slot_color [n,5] (-1 none), bg [n]."""
    n = len(scenes["bg"])
    slot_shape = np.zeros((n, 5), dtype=np.int64)
    slot_color = np.full((n, 5), -1, dtype=np.int64)
    for k in range(scenes["shape"].shape[1]):  # objects per scene (2 here; more elsewhere)
        has = scenes["shape"][:, k] >= 0
        idx = np.nonzero(has)[0]
        slot_shape[idx, scenes["pos"][idx, k]] = scenes["shape"][idx, k] + 1
        slot_color[idx, scenes["pos"][idx, k]] = scenes["color"][idx, k]
    return slot_shape, slot_color, scenes["bg"].copy()


def object_phrase(shape, color, size, pos, with_size, with_pos) -> str:
    words = []
    if with_size:
        words.append(SIZES[size])
    words += [COLOR_NAMES[color], SHAPES[shape]]
    words.insert(0, "an" if words[0][0] in "aeiou" else "a")
    if with_pos:
        words.append(POSITION_PHRASE[POSITIONS[pos]])
    return " ".join(words)


def caption(scenes: dict, i: int, rng: np.random.Generator, full: bool = False) -> str:
    """One caption of scene i; full=True always names size-free position and background."""
    with_pos = full or rng.random() < 0.75
    with_bg = full or rng.random() < 0.6
    parts = []
    for k in range(int(scenes["n_obj"][i])):
        with_size = (not full) and rng.random() < 0.3
        parts.append(object_phrase(scenes["shape"][i, k], scenes["color"][i, k], scenes["size"][i, k],
                                   scenes["pos"][i, k], with_size, with_pos))
    text = " and ".join(parts)
    if with_bg:
        text += f" on a {BACKGROUND_NAMES[scenes['bg'][i]]} background"
    return text


def captions(scenes: dict, seed: int, per_scene: int = 1, full: bool = False) -> list:
    rng = np.random.default_rng(seed)
    n = len(scenes["bg"])
    return [[caption(scenes, i, rng, full) for _ in range(per_scene)] for i in range(n)]


if __name__ == "__main__":
    sc = sample_scenes(8, 0)
    imgs = render(sc)
    caps = captions(sc, 1, per_scene=2)
    for i in range(8):
        print(caps[i])
    print(imgs.shape, imgs.dtype, VOCAB_WORDS, len(VOCAB_WORDS))


def make_scene(objects, background: str) -> dict:
    """One scene from explicit objects [(shape, color, size, position), ...] (no jitter)."""
    n = len(objects)
    assert 1 <= n <= 2
    sc = dict(n_obj=np.array([n]), shape=np.full((1, 2), -1), color=np.full((1, 2), -1),
              size=np.full((1, 2), -1), pos=np.full((1, 2), -1), radius=np.zeros((1, 2), np.float32),
              cx=np.zeros((1, 2), np.float32), cy=np.zeros((1, 2), np.float32),
              bg=np.array([BACKGROUND_NAMES.index(background)]))
    for k, (shape, color, size, position) in enumerate(objects):
        sc["shape"][0, k] = SHAPES.index(shape)
        sc["color"][0, k] = COLOR_NAMES.index(color)
        sc["size"][0, k] = SIZES.index(size)
        sc["pos"][0, k] = POSITIONS.index(position)
        sc["radius"][0, k] = sum(SIZE_RADIUS[size]) / 2
        sc["cx"][0, k], sc["cy"][0, k] = POSITION_CENTERS[POSITIONS.index(position)]
    return sc
