// Per-sample Gaussian noise from the sample's own seed: a sample's noise never depends on the
// batch it runs in. Streams: 0 = initial latents, 1 + i = step i (SDE noise).

/** 32-bit hash mixing (murmur3 finaliser) to derive independent stream seeds. */
function mix32(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** sfc32: a small, fast generator with 128-bit state, good statistical quality. */
function sfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    const r = (t + d) | 0;
    c = (c + r) | 0;
    return (r >>> 0) / 4294967296;
  };
}

export function streamRandom(seed: number, stream: number): () => number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const a = mix32(lo ^ 0x9e3779b9);
  const b = mix32(hi ^ mix32(stream + 0x632be5ab));
  const c = mix32(a ^ b ^ 0x7f4a7c15);
  const d = mix32(stream ^ 0x1b873593);
  const next = sfc32(a, b, c, d);
  for (let i = 0; i < 12; i++) next(); // warm up the state
  return next;
}

/** Fills `out` with standard normal float32 draws (Box-Muller). */
export function fillGaussian(seed: number, stream: number, out: Float32Array): void {
  const rand = streamRandom(seed, stream);
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - rand(); // (0, 1]: log stays finite
    const u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}

import type { NoiseSource } from './types.ts';

export function seededNoise(seeds: readonly number[]): NoiseSource {
  return {
    name: 'seeded',
    initial: (b, out) => fillGaussian(seeds[b], 0, out),
    step: (b, step, out) => fillGaussian(seeds[b], 1 + step, out),
  };
}
