// Image batches as rewards take them: uint8 [B, 3, H, W] (NCHW, batch-first), e.g. a rollout's
// `responses` tensor. Shared validation with clear errors.

export interface ImageBatch {
  readonly data: Uint8Array;
  readonly shape: readonly number[];
  /** Optional dtype tag (core HostTensor); when present it must be 'U8'. */
  readonly dtype?: string;
}

export interface ImageDims { batch: number; channels: 3; height: number; width: number }

export function checkImages(images: ImageBatch, who: string): ImageDims {
  if (images === null || typeof images !== 'object') throw new TypeError(`${who}: images must be { data: Uint8Array, shape: [B, 3, H, W] }`);
  if (images.dtype !== undefined && images.dtype !== 'U8') {
    throw new TypeError(`${who}: images must be uint8 (dtype 'U8'), got dtype '${images.dtype}'`);
  }
  if (!(images.data instanceof Uint8Array)) {
    throw new TypeError(`${who}: images.data must be a Uint8Array (uint8 pixels), got ${Object.prototype.toString.call(images.data)}`);
  }
  const s = images.shape;
  if (!Array.isArray(s) || s.length !== 4 || !s.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new RangeError(`${who}: images.shape must be [B, 3, H, W] (NCHW), got ${JSON.stringify(s)}`);
  }
  const [b, c, h, w] = s as [number, number, number, number];
  if (c !== 3) throw new RangeError(`${who}: images must have 3 channels in dim 1 (NCHW [B, 3, H, W]), got shape ${JSON.stringify(s)}`);
  if (h < 1 || w < 1) throw new RangeError(`${who}: empty image size in shape ${JSON.stringify(s)}`);
  if (images.data.length !== b * c * h * w) {
    throw new RangeError(`${who}: images.data has ${images.data.length} elements, shape ${JSON.stringify(s)} needs ${b * c * h * w}`);
  }
  return { batch: b, channels: 3, height: h, width: w };
}
