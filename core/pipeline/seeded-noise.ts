// Per-sample Gaussian noise from the sample's own seed: a sample's noise never depends on the
// batch it runs in. Streams: 0 = initial latents, 1 + i = step i (SDE noise).

/** 32-bit hash mixing (murmur3 finaliser) to derive independent stream seeds. */
function mix32(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/*
 * sfc32: a small, fast generator with 128-bit state, good statistical quality. One draw:
 *   t = a + b; a = b ^ (b >>> 9); b = c + (c << 3); c = rotl(c, 21); d = d + 1; r = t + d; c = c + r
 * and r / 2^32 in [0, 1). The state lives in int32 locals (the same bits as uint32: every
 * operation is modulo 2^32), written out inline where speed matters (fillGaussian).
 */
type Sfc32State = [a: number, b: number, c: number, d: number];

/** A stream's seeded state, after 12 warm-up draws. */
function seedState(seed: number, stream: number): Sfc32State {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let a = mix32(lo ^ 0x9e3779b9);
  let b = mix32(hi ^ mix32(stream + 0x632be5ab));
  let c = mix32(a ^ b ^ 0x7f4a7c15);
  let d = mix32(stream ^ 0x1b873593);
  for (let i = 0; i < 12; i++) {
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    c = (c + ((t + d) | 0)) | 0;
  }
  return [a, b, c, d];
}

export function streamRandom(seed: number, stream: number): () => number {
  let [a, b, c, d] = seedState(seed, stream);
  return () => {
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

const TWO_PI = 2 * Math.PI;

/**
 * Fills `out` with standard normal float32 draws (Box-Muller on two draws per pair: u1 = 1 - r1
 * in (0, 1] so that log stays finite, u2 = r2). The generator is inlined: this runs for every
 * latent element of every sample's initial noise and SDE step, and a closure call per draw
 * cost as much as the logarithm.
 */
export function fillGaussian(seed: number, stream: number, out: Float32Array): void {
  let [a, b, c, d] = seedState(seed, stream);
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    let r = (t + d) | 0;
    c = (c + r) | 0;
    const u1 = 1 - (r >>> 0) / 4294967296;
    t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    r = (t + d) | 0;
    c = (c + r) | 0;
    const theta = TWO_PI * ((r >>> 0) / 4294967296);
    const radius = Math.sqrt(-2 * Math.log(u1));
    out[i] = radius * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = radius * Math.sin(theta);
  }
}
