// The batch's noise source: each sample's own seed (seeded-noise.ts), large batches drawn with
// helper threads (noise-threads.ts).
import type { NoiseSource } from './types.ts';
import { fillNoise, type NoiseJob } from './noise-threads.ts';
import { fillGaussian } from './seeded-noise.ts';

/** The default noise source: each sample's own seed, streams 0 (initial) and 1 + step. */
export class SeededNoise implements NoiseSource {
  readonly name = 'seeded';
  constructor(private readonly seeds: readonly number[]) {}
  readonly initial = (b: number, out: Float32Array): void => fillGaussian(this.seeds[b], 0, out);
  readonly step = (b: number, step: number, out: Float32Array): void => fillGaussian(this.seeds[b], 1 + step, out);

  /** Row r of `out` (`per` values) gets sample samples[r]'s noise of `stream`, helper threads drawing a share. */
  fillRows(samples: ArrayLike<number>, stream: number, out: Float32Array, per: number): void {
    const jobs: NoiseJob[] = [];
    for (let r = 0; r < samples.length; r++) jobs.push({ seed: this.seeds[samples[r]], stream, offset: r * per, length: per });
    fillNoise(jobs, out);
  }
}

export function seededNoise(seeds: readonly number[]): NoiseSource {
  return new SeededNoise(seeds);
}

/** The initial noise of samples 0..count-1 into rows of `per` values: at once for the seeded source, else sample by sample. */
export function initialNoise(noise: NoiseSource, count: number, out: Float32Array, per: number): void {
  if (noise instanceof SeededNoise) return noise.fillRows(Array.from({ length: count }, (_, b) => b), 0, out, per);
  for (let b = 0; b < count; b++) noise.initial(b, out.subarray(b * per, (b + 1) * per));
}

/** Step `step`'s noise of the listed samples into consecutive rows of `per` values (as initialNoise). */
export function stepNoise(noise: NoiseSource, samples: ArrayLike<number>, step: number, out: Float32Array, per: number): void {
  if (noise instanceof SeededNoise) return noise.fillRows(samples, 1 + step, out, per);
  for (let r = 0; r < samples.length; r++) noise.step(samples[r], step, out.subarray(r * per, (r + 1) * per));
}
