"""JPEG sizes as Flow-GRPO's jpeg_compressibility measures them (PIL, quality 95, defaults).

Writes test/fixtures/jpeg-pil.safetensors: the images and PIL's byte count for each, which
test/rewards.test.ts matches with rewards/jpeg-compressibility.ts (sharp). Needs only Pillow
(stdlib safetensors I/O: no numpy, so it runs on the CPU machine).

  python3 -m omni_ref.jpeg_sizes OUT.safetensors ROLLOUT.safetensors [ROLLOUT.safetensors ...]

The rollouts are `omni-worker generate` outputs (their `responses`, uint8 [B, 3, H, W]), joined
into `group`; `odd` adds seeded gradient-plus-noise images of an odd size (17x33, 4:2:0 padding).
"""
import io
import json
import math
import random
import struct
import sys

from PIL import Image


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        s, e = h["data_offsets"]
        out[name] = (h["dtype"], h["shape"], buf[8 + n + s:8 + n + e])
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def pil_sizes(shape, data):
    """Bytes of each image of a uint8 [B, 3, H, W] batch, saved as Flow-GRPO does."""
    b, c, h, w = shape
    plane = h * w
    sizes = []
    for i in range(b):
        chw = data[i * c * plane:(i + 1) * c * plane]
        hwc = bytes(chw[ch * plane + p] for p in range(plane) for ch in range(3))
        buf = io.BytesIO()
        Image.frombytes("RGB", (w, h), hwc).save(buf, format="JPEG", quality=95)
        sizes.append(buf.tell())
    return sizes


def odd_images(n=4, h=17, w=33, seed=7):
    rng = random.Random(seed)
    out = bytearray()
    for _ in range(n):
        noise, fx, fy = rng.uniform(0, 120), rng.uniform(0, 0.3), rng.uniform(0, 0.3)
        for ch in range(3):
            base = rng.uniform(0, 255)
            for y in range(h):
                for x in range(w):
                    v = base * (0.5 + 0.5 * math.sin(fx * x * (ch + 1) + fy * y)) + rng.uniform(-0.5, 0.5) * noise
                    out.append(max(0, min(255, round(v))))
    return [n, 3, h, w], bytes(out)


def main(out_path, rollouts):
    shapes, datas = [], []
    for p in rollouts:
        dtype, shape, data = read_safetensors(p)["responses"]
        assert dtype == "U8" and len(shape) == 4, f"{p}: responses must be uint8 [B, 3, H, W]"
        shapes.append(shape)
        datas.append(data)
    group = ([sum(s[0] for s in shapes)] + shapes[0][1:], b"".join(datas))
    odd = odd_images()
    tensors = {}
    for name, (shape, data) in (("group", group), ("odd", odd)):
        tensors[name] = ("U8", shape, data)
        tensors[f"{name}_pil_bytes"] = ("I64", [shape[0]], struct.pack(f"<{shape[0]}q", *pil_sizes(shape, data)))
    write_safetensors(out_path, tensors)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
