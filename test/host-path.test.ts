// The host path's one-pass and no-copy forms give the same bits as the step-by-step forms they
// replace: the fused SDE sampling step, the inlined Box-Muller noise, the whole-tensor finite scan
// and the chunked safetensors answer (bench/host-path.ts measures what they save).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { availableParallelism } from 'node:os';
import { fillGaussian, streamRandom } from '../core/pipeline/seeded-noise.ts';
import { fillNoise, MIN_THREADED_VALUES, startNoiseHelpers, type NoiseJob } from '../core/pipeline/noise-threads.ts';
import { initialNoise, seededNoise, stepNoise } from '../core/pipeline/noise-source.ts';
import type { NoiseSource } from '../core/pipeline/types.ts';
import { checkFinite } from '../core/pipeline/non-finite.ts';
import type { SampleSpec } from '../core/pipeline/types.ts';
import { flowMatchSigmas } from '../core/scheduler/flow-match.ts';
import { safetensorsChunks, serializeSafetensors } from '../core/tensors/safetensors.ts';
import { f32, tensor } from '../core/tensors/tensor.ts';
import { addNoise, transition } from '../plugins/sde-scheduler/sde-step.ts';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const sigmas = flowMatchSigmas({ steps: 10, shift: 3 });
const floats = (n: number) => fc.float32Array({ minLength: n, maxLength: n, noNaN: true, min: -8, max: 8 });

describe('fused SDE sampling step', () => {
  it('gives meanInto + addNoise + logProb bit for bit, for sde and cps, with and without log-probs', () => {
    fc.assert(fc.property(
      fc.constantFrom<'sde' | 'cps'>('sde', 'cps'), fc.integer({ min: 0, max: 9 }), fc.double({ min: 0.05, max: 1, noNaN: true }),
      fc.integer({ min: 1, max: 40 }).chain((n) => fc.tuple(floats(n), floats(n), floats(n))), fc.boolean(),
      (type, i, a, [x, v, eps], withLogProb) => {
        const tr = transition(type, sigmas[i], sigmas[i + 1], sigmas[1], a);
        const mean = new Float32Array(x.length), want = new Float32Array(x.length), got = new Float32Array(x.length);
        tr.meanInto(x, v, mean);
        addNoise(mean, tr.std, eps, want);
        const lp = tr.sampleInto(x, v, eps, got, withLogProb);
        expect(bits(got)).toEqual(bits(want));
        if (withLogProb) expect(Object.is(lp, tr.logProb(want, mean))).toBe(true);
        else expect(lp).toBeNaN();
      }));
  });
});

describe('fillGaussian', () => {
  it("is Box-Muller on streamRandom's draws, bit for bit, at every length (odd ones end on a cosine)", () => {
    fc.assert(fc.property(fc.nat({ max: 2 ** 53 - 1 }), fc.nat({ max: 2 ** 31 }), fc.integer({ min: 1, max: 301 }), (seed, stream, n) => {
      const rand = streamRandom(seed, stream);
      const want = new Float32Array(n);
      for (let k = 0; k < n; k += 2) {
        const u1 = 1 - rand(), u2 = rand();
        const r = Math.sqrt(-2 * Math.log(u1));
        want[k] = r * Math.cos(2 * Math.PI * u2);
        if (k + 1 < n) want[k + 1] = r * Math.sin(2 * Math.PI * u2);
      }
      const got = new Float32Array(n);
      fillGaussian(seed, stream, got);
      expect(bits(got)).toEqual(bits(want));
    }));
  });
});

describe('noise drawn with helper threads', () => {
  it.skipIf(availableParallelism() < 2)('gives each job the values fillGaussian gives it, whichever thread draws them', async () => {
    expect(await startNoiseHelpers()).toBe(true);
    // Odd lengths, repeated seeds on other streams, in an order unlike the output's.
    const jobs: NoiseJob[] = [];
    let offset = 0;
    for (let k = 0; offset < 2 * MIN_THREADED_VALUES; k++) {
      const length = 1000 + ((k * 7919) % 3001);
      jobs.push({ seed: 2 ** 40 + (k % 5), stream: k, offset, length });
      offset += length + 3; // gaps stay untouched
    }
    const got = new Float32Array(offset).fill(7);
    fillNoise([...jobs].reverse(), got);
    const want = new Float32Array(offset).fill(7);
    for (const j of jobs) fillGaussian(j.seed, j.stream, want.subarray(j.offset, j.offset + j.length));
    expect(bits(got)).toEqual(bits(want));
  });

  it('fills a batch row by row, from the seeded source at once and from any other source sample by sample, the same values', () => {
    const seeds = [5, 2 ** 33, 5, 17];
    const per = 9;
    const calls: string[] = [];
    const seeded = seededNoise(seeds);
    const other: NoiseSource = {
      name: 'replay',
      initial: (b, out) => { calls.push(`initial ${b}`); seeded.initial(b, out); },
      step: (b, step, out) => { calls.push(`step ${b} ${step}`); seeded.step(b, step, out); },
    };
    for (const source of [seeded, other]) {
      const initial = new Float32Array(seeds.length * per);
      initialNoise(source, seeds.length, initial, per);
      const step = new Float32Array(2 * per);
      stepNoise(source, [3, 1], 4, step, per);
      const want = new Float32Array(per);
      seeds.forEach((seed, b) => {
        fillGaussian(seed, 0, want);
        expect(bits(initial.subarray(b * per, (b + 1) * per))).toEqual(bits(want));
      });
      [3, 1].forEach((b, r) => {
        fillGaussian(seeds[b], 5, want);
        expect(bits(step.subarray(r * per, (r + 1) * per))).toEqual(bits(want));
      });
    }
    expect(calls).toEqual(['initial 0', 'initial 1', 'initial 2', 'initial 3', 'step 3 4', 'step 1 4']);
  });
});

describe('checkFinite', () => {
  const samples = Array.from({ length: 6 }, (_, b) => ({ requestIndex: b >> 1, outputIndex: b & 1, seed: 100 + b }) as SampleSpec);

  it('names every sample holding a non-finite value, tensor by tensor, in sample order', () => {
    const latents = f32([6, 2, 3]);
    latents.data[2 * 6 + 4] = NaN; // sample 2, element [1, 1]
    latents.data[2 * 6 + 5] = Infinity; // the same sample again: named once
    latents.data[5 * 6] = -Infinity; // sample 5
    const all = f32([6, 4]);
    all.data[3] = NaN; // sample 0
    const image = tensor('U8', [6, 2], new Uint8Array(12).fill(255));
    expect(() => checkFinite({ batch: { latents_clean: latents, all_latents: all, responses: image }, nonTensorBatch: {}, metaInfo: {} }, samples))
      .toThrow('the rollout holds non-finite values: request 1 sample 0 (seed 102): latents_clean holds NaN at [1, 1] of the sample; ' +
        'request 2 sample 1 (seed 105): latents_clean holds -Infinity at [0, 0] of the sample; ' +
        'request 0 sample 0 (seed 100): all_latents holds NaN at [3] of the sample.');
  });

  it('passes a finite rollout', () => {
    expect(() => checkFinite({ batch: { latents_clean: f32([6, 5]) }, nonTensorBatch: {}, metaInfo: {} }, samples)).not.toThrow();
  });
});

describe('safetensorsChunks', () => {
  it('joined, are serializeSafetensors bytes, and the tensor chunks are views of the tensors (no copy)', () => {
    const a = f32([2, 3], Float32Array.from([1, 2, 3, 4, 5, 6]));
    const b = tensor('U8', [2], Uint8Array.from([7, 8]));
    const chunks = safetensorsChunks({ b, a }, { meta: '{"x":1}' });
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(serializeSafetensors({ b, a }, { meta: '{"x":1}' })));
    expect(chunks.slice(1).map((c) => c.buffer)).toEqual([a.data.buffer, b.data.buffer]);
  });
});
