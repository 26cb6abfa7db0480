// Rollout images (uint8 [B, 3, H, W]) to PNG files, one by one or as a grid.
import { encode } from 'fast-png';
import type { HostTensor } from '../tensors/tensor.ts';

function checkImages(images: HostTensor): [number, number, number] {
  const [B, C, H, W] = images.shape;
  if (images.dtype !== 'U8' || images.shape.length !== 4 || C !== 3) {
    throw new Error(`images must be U8 [B, 3, H, W], got ${images.dtype}[${images.shape}]`);
  }
  return [B, H, W];
}

/** Sample b as interleaved RGB (HWC). */
export function toRgb(images: HostTensor, b: number): Uint8Array {
  const [, H, W] = checkImages(images);
  const plane = H * W;
  const src = images.data as Uint8Array;
  const out = new Uint8Array(plane * 3);
  const base = b * 3 * plane;
  for (let i = 0; i < plane; i++) {
    out[3 * i] = src[base + i];
    out[3 * i + 1] = src[base + plane + i];
    out[3 * i + 2] = src[base + 2 * plane + i];
  }
  return out;
}

export function imagePng(images: HostTensor, b: number): Uint8Array {
  const [, H, W] = checkImages(images);
  return encode({ width: W, height: H, data: toRgb(images, b), channels: 3, depth: 8 });
}

/** All images in a near-square grid, `pad` white pixels apart, each scaled up by `zoom`. */
export function gridPng(images: HostTensor, opts: { pad?: number; zoom?: number; cols?: number } = {}): Uint8Array {
  const [B, H, W] = checkImages(images);
  const pad = opts.pad ?? 2;
  const zoom = opts.zoom ?? 1;
  const cols = opts.cols ?? Math.ceil(Math.sqrt(B));
  const rows = Math.ceil(B / cols);
  const cw = W * zoom, ch = H * zoom;
  const GW = cols * cw + (cols + 1) * pad;
  const GH = rows * ch + (rows + 1) * pad;
  const out = new Uint8Array(GW * GH * 3).fill(255);
  for (let b = 0; b < B; b++) {
    const rgb = toRgb(images, b);
    const x0 = pad + (b % cols) * (cw + pad);
    const y0 = pad + Math.floor(b / cols) * (ch + pad);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const s = 3 * (Math.floor(y / zoom) * W + Math.floor(x / zoom));
        const d = 3 * ((y0 + y) * GW + x0 + x);
        out[d] = rgb[s]; out[d + 1] = rgb[s + 1]; out[d + 2] = rgb[s + 2];
      }
    }
  }
  return encode({ width: GW, height: GH, data: out, channels: 3, depth: 8 });
}
