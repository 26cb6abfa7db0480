// JPEG compressibility reward as in Flow-GRPO: minus the JPEG file size in kB (1 kB = 1000 bytes)
// of each image encoded at quality 95. Simpler (flatter) images score higher.
import jpeg from 'jpeg-js';
import { checkImages, type ImageBatch } from './images.ts';

/** JPEG size in bytes of each image of a uint8 [B, 3, H, W] batch. */
export function jpegSizes(images: ImageBatch, quality = 95): Float64Array {
  const { batch, height, width } = checkImages(images, 'jpegCompressibility');
  if (!(quality >= 1 && quality <= 100)) throw new RangeError(`jpegCompressibility: quality must be in [1, 100], got ${quality}`);
  const plane = height * width;
  const out = new Float64Array(batch);
  const rgba = Buffer.alloc(plane * 4);
  for (let b = 0; b < batch; b++) {
    const base = b * 3 * plane;
    for (let p = 0; p < plane; p++) {
      rgba[4 * p] = images.data[base + p]!;
      rgba[4 * p + 1] = images.data[base + plane + p]!;
      rgba[4 * p + 2] = images.data[base + 2 * plane + p]!;
      rgba[4 * p + 3] = 255;
    }
    out[b] = jpeg.encode({ data: rgba, width, height }, quality).data.length;
  }
  return out;
}

/** Reward per image: -(JPEG size at `quality`) / 1000, i.e. minus kilobytes. */
export function jpegCompressibility(images: ImageBatch, quality = 95): Float32Array {
  const sizes = jpegSizes(images, quality);
  const r = new Float32Array(sizes.length);
  for (let i = 0; i < sizes.length; i++) r[i] = -sizes[i]! / 1000;
  return r;
}
