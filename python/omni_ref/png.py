"""Minimal PNG writer (no Pillow needed) and image grids."""
import struct
import zlib

import numpy as np


def write_png(path: str, img: np.ndarray) -> None:
    """img: uint8 [H, W, 3]."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def grid(images: np.ndarray, cols: int, scale: int = 1, pad: int = 2) -> np.ndarray:
    """images uint8 [n, 3, h, w] -> [H, W, 3] grid, nearest-neighbour upscaled."""
    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    H, W = h * scale, w * scale
    out = np.full((rows * (H + pad) + pad, cols * (W + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        im = images[i].transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1)
        out[pad + r * (H + pad): pad + r * (H + pad) + H, pad + c * (W + pad): pad + c * (W + pad) + W] = im
    return out
