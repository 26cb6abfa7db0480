// Planning and merging of one generate call over random mixes of requests (fast-check): every
// sample planned once, in request order, with its own seed, grouped only with compatible samples;
// merged back in request order with every key for every sample, or refused naming the requests.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { constants } from 'node:buffer';
import { expandRequests, planBatches, type PlannedBatch } from '../core/model-runner/batching.ts';
import { mergeRollouts, type BatchRollout } from '../core/model-runner/merge.ts';
import { checkOutputAgreement, checkRolloutSize, type BatchOutputs } from '../core/model-runner/output-agreement.ts';
import { UNBOUNDED, type RequestBounds } from '../core/model-runner/request-bounds.ts';
import type { GenerateRequest, RolloutData } from '../core/protocol.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { f32 } from '../core/tensors/tensor.ts';

const DEFAULTS = { height: 16, width: 16, steps: 4, guidanceScale: 4.5 };
const CLAIMED = new Set(['sde', 'lora']);
/** The seed of a request that gives none (the worker's randomSeed service). */
const randomSeed = () => 2 ** 40 + Math.floor(Math.random() * 1000);

const request: fc.Arbitrary<GenerateRequest> = fc.record({
  prompt: fc.constantFrom('a', 'b', 'c'),
  numOutputsPerPrompt: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
  seed: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: undefined }),
  steps: fc.option(fc.constantFrom(2, 4), { nil: undefined }),
  guidanceScale: fc.option(fc.constantFrom(1, 4.5), { nil: undefined }),
  sde: fc.option(fc.constantFrom({ type: 'sde' }, { type: 'cps', noiseLevel: 0.5 }), { nil: undefined }),
  lora: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
}, { requiredKeys: ['prompt'] }).chain((r) => (r.numOutputsPerPrompt === undefined && r.seed === undefined
  ? fc.option(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 4 }), { nil: undefined }).map((seeds) => (seeds ? { ...r, seeds } : r))
  : fc.constant(r)));

/** What a batch's samples must share: sampling parameters and plugin options. */
const groupKey = (b: PlannedBatch, k: number) => {
  const { prompt, negativePrompt, numOutputsPerPrompt, seed, seeds, ...rest } = b.samples[k].request;
  return JSON.stringify([b.params, Object.entries(rest).filter(([key]) => !['height', 'width', 'steps', 'guidanceScale'].includes(key)).sort()]);
};

describe('request planning over random mixes', () => {
  it('plans every sample once, in request order, with its own seed, in batches of compatible samples', () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 5 }), (reqs, maxBatchSize) => {
      const plan = planBatches(reqs, DEFAULTS, maxBatchSize, CLAIMED, randomSeed);
      const rows = plan.flatMap((b) => b.outputRows);
      const total = reqs.reduce((n, r) => n + (r.numOutputsPerPrompt ?? r.seeds?.length ?? 1), 0);
      expect([...rows].sort((a, b) => a - b)).toEqual([...Array(total).keys()]);
      // Row r is sample (request i, output k) in request order.
      const order = reqs.flatMap((r, i) => Array.from({ length: r.numOutputsPerPrompt ?? r.seeds?.length ?? 1 }, (_, k) => [i, k]));
      const seedsOf = new Map<number, number[]>();
      for (const b of plan) {
        expect(b.samples.length).toBeLessThanOrEqual(maxBatchSize);
        b.samples.forEach((s, k) => {
          expect([s.requestIndex, s.outputIndex]).toEqual(order[b.outputRows[k]]);
          expect(groupKey(b, k)).toBe(groupKey(b, 0));
          const r = reqs[s.requestIndex];
          if (r.seeds) expect(s.seed).toBe(r.seeds[s.outputIndex]);
          else if (r.seed !== undefined) expect(s.seed).toBe(r.seed + s.outputIndex);
          seedsOf.set(s.requestIndex, [...(seedsOf.get(s.requestIndex) ?? []), s.seed]);
        });
        // Within a batch, samples keep request order.
        expect([...b.outputRows].sort((x, y) => x - y)).toEqual(b.outputRows);
      }
      // Without explicit seeds, a request's samples never share a seed.
      reqs.forEach((r, i) => { if (!r.seeds) expect(new Set(seedsOf.get(i)).size).toBe(seedsOf.get(i)!.length); });
      // Only a full batch is followed by another of the same group.
      const byKey = new Map<string, PlannedBatch[]>();
      for (const b of plan) byKey.set(groupKey(b, 0), [...(byKey.get(groupKey(b, 0)) ?? []), b]);
      for (const list of byKey.values()) list.slice(0, -1).forEach((b) => expect(b.samples.length).toBe(maxBatchSize));
    }));
  });

  it('refuses, naming the request and key, any option that neither core nor a loaded plugin reads', () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 5 }), fc.nat(), fc.constantFrom('capture', 'sde_typo', 'Steps'), (reqs, at, key) => {
      const i = at % reqs.length;
      const bad = reqs.map((r, k) => (k === i ? { ...r, [key]: true } : r));
      expect(() => planBatches(bad, DEFAULTS, 4, CLAIMED, randomSeed)).toThrow(`request ${i}: option '${key}' is not read by core or any loaded plugin`);
    }));
  });

  it('refuses seeds that would repeat or are missing, with the request and field named', () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(() => expandRequests([{ prompt: 'x', seed: max - 1, numOutputsPerPrompt: 3 }], DEFAULTS, randomSeed)).toThrow(/request 0: seed = 9007199254740990 with 3 samples .*past 2\^53 - 1/);
    expect(expandRequests([{ prompt: 'x', seed: max - 2, numOutputsPerPrompt: 3 }], DEFAULTS, randomSeed).samples.map((s) => s.seed)).toEqual([max - 2, max - 1, max]);
    expect(() => expandRequests([{ prompt: 'x', seeds: [] }], DEFAULTS, randomSeed)).toThrow(/request 0: seeds is empty/);
    expect(() => expandRequests([{ prompt: 'x' }, { prompt: 'y', seeds: [] }], DEFAULTS, randomSeed)).toThrow(/request 1: seeds is empty/);
    expect(() => expandRequests([{ prompt: 'x', seeds: [1, 1.5] }], DEFAULTS, randomSeed)).toThrow(/request 0: seeds\[1\] must be a non-negative integer, got 1.5/);
    // NaN and Infinity are named as such (JSON would write null).
    expect(() => expandRequests([{ prompt: 'x', seeds: [1, NaN] }], DEFAULTS, randomSeed)).toThrow(/request 0: seeds\[1\] must be a non-negative integer, got NaN$/);
    expect(() => expandRequests([{ prompt: 'x', seed: Infinity }], DEFAULTS, randomSeed)).toThrow(/request 0: seed must be a non-negative integer, got Infinity$/);
    expect(() => expandRequests([{ prompt: 'x', numOutputsPerPrompt: NaN }], DEFAULTS, randomSeed)).toThrow(/request 0: numOutputsPerPrompt must be a positive integer, got NaN$/);
    expect(() => expandRequests([{ prompt: 'x', steps: -Infinity }], DEFAULTS, randomSeed)).toThrow(/request 0: steps must be a positive integer, got -Infinity$/);
  });

  it('bounds each request by the limits and the model before expanding it', () => {
    const bounds: RequestBounds = { limits: { maxSamplesPerCall: 64, maxSteps: 50, maxHeight: 512, maxWidth: 256, maxPixels: 128 * 256 }, downscale: 8 };
    const refuse = (reqs: GenerateRequest[], b: RequestBounds, pattern: RegExp) => expect(() => expandRequests(reqs, DEFAULTS, randomSeed, b)).toThrow(pattern);
    const t0 = performance.now();
    refuse([{ prompt: 'x', numOutputsPerPrompt: 1e9 }], bounds, /request 0: numOutputsPerPrompt = 1000000000 is over limits.maxSamplesPerCall \(64\)/);
    expect(performance.now() - t0).toBeLessThan(1000); // refused, not built
    refuse([{ prompt: 'x', numOutputsPerPrompt: 40 }, { prompt: 'y', numOutputsPerPrompt: 30 }], bounds, /request 1: numOutputsPerPrompt brings the call to 70 samples, over limits.maxSamplesPerCall \(64\)/);
    refuse([{ prompt: 'x', steps: 100000 }], bounds, /request 0: steps 100000 is over limits.maxSteps \(50\)/);
    refuse([{ prompt: 'x', height: 8192, width: 64 }], bounds, /request 0: height 8192 is over limits.maxHeight \(512\)/);
    refuse([{ prompt: 'x', height: 512, width: 256 }], bounds, /request 0: height 512 x width 256 = 131072 pixels is over limits.maxPixels/);
    refuse([{ prompt: 'x', height: 60, width: 64 }], bounds, /request 0: height 60 is not a multiple of 8/);
    refuse([{ prompt: 'x' }], { ...UNBOUNDED, fixedHeight: 32, fixedWidth: 32 }, /request 0: height 16 \(the default\) does not fit the model: its graphs take images of 32x32/);
    for (const g of [Infinity, NaN, -1]) refuse([{ prompt: 'x', guidanceScale: g }], bounds, /request 0: guidanceScale must be a finite number >= 0/);
  });

  it('refuses a call whose merged tensors would not fit one array, before any batch runs', () => {
    const images = { responses: { dtype: 'U8', shape: [3, 4096, 4096] } } as const;
    const fit = Math.floor(constants.MAX_LENGTH / (3 * 4096 * 4096)); // 85 on Node 20
    expect(() => checkRolloutSize(images, fit)).not.toThrow();
    expect(() => checkRolloutSize(images, fit + 1)).toThrow(`the call's 'responses' would hold ${fit + 1} samples x [3, 4096, 4096] = ${(fit + 1) * 3 * 4096 * 4096} values, more than one array holds`);
  });
});

/** A batch's rollout whose every value tells the row it belongs to, and per-batch extras. */
function syntheticRollout(b: PlannedBatch, extras: { key?: string; meta?: string; perSample?: string }): RolloutData {
  const B = b.samples.length;
  const rowsOf = (width: number) => f32([B, width], Float32Array.from({ length: B * width }, (_, i) => b.outputRows[Math.floor(i / width)]));
  const batch: RolloutData['batch'] = { latents_clean: rowsOf(3) };
  if (extras.key) batch[extras.key] = rowsOf(2);
  const nonTensorBatch: RolloutData['nonTensorBatch'] = { seed: b.samples.map((s) => s.seed) };
  if (extras.perSample) nonTensorBatch[extras.perSample] = b.outputRows.map((r) => r * 10);
  const metaInfo: RolloutData['metaInfo'] = { steps: b.params.steps, model: 'm' };
  if (extras.meta) metaInfo[extras.meta] = { name: extras.meta };
  return { batch, nonTensorBatch, metaInfo };
}

describe('merging over random batch layouts', () => {
  const layout = fc.tuple(fc.array(request, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 4 }));

  it('puts every row back in request order, with every per-sample value JSON-safe (null where a batch has none)', () => {
    fc.assert(fc.property(layout, fc.infiniteStream(fc.boolean()), ([reqs, maxBatchSize], coin) => {
      const plan = planBatches(reqs, DEFAULTS, maxBatchSize, CLAIMED, randomSeed);
      const extras = plan.map(() => ({ meta: coin.next().value ? 'lora' : undefined, perSample: coin.next().value ? 'sde_window_start' : undefined }));
      const parts: BatchRollout[] = plan.map((b, i) => ({ rollout: syntheticRollout(b, extras[i]), outputRows: b.outputRows, requests: b.samples.map((s) => s.requestIndex) }));
      const total = plan.reduce((n, b) => n + b.samples.length, 0);
      const merged = mergeRollouts(parts, total);
      const t = merged.batch.latents_clean;
      expect(t!.shape).toEqual([total, 3]);
      for (let r = 0; r < total; r++) expect(Array.from((t!.data as Float32Array).subarray(r * 3, r * 3 + 3))).toEqual([r, r, r]);
      for (const col of Object.values(merged.nonTensorBatch)) {
        expect(col).toHaveLength(total);
        expect(col).not.toContain(undefined);
      }
      const window = merged.nonTensorBatch.sde_window_start;
      if (window) plan.forEach((b, i) => b.outputRows.forEach((r) => expect(window[r]).toBe(extras[i].perSample ? r * 10 : null)));
      // Saved and loaded as is: nothing in it fails JSON.
      const copy = RolloutBatch.fromSafetensors(new RolloutBatch(merged).toSafetensors());
      expect(copy.nonTensorBatch).toEqual(merged.nonTensorBatch);
      expect(copy.metaInfo).toEqual(merged.metaInfo);
    }));
  });

  it('refuses batches whose tensors disagree, naming the requests on each side', () => {
    fc.assert(fc.property(layout, fc.infiniteStream(fc.boolean()), ([reqs, maxBatchSize], coin) => {
      const plan = planBatches(reqs, DEFAULTS, maxBatchSize, CLAIMED, randomSeed);
      const withKey = plan.map(() => coin.next().value);
      const parts: BatchRollout[] = plan.map((b, i) => ({
        rollout: syntheticRollout(b, { key: withKey[i] ? 'rollout_log_probs' : undefined }), outputRows: b.outputRows, requests: b.samples.map((s) => s.requestIndex),
      }));
      const total = plan.reduce((n, b) => n + b.samples.length, 0);
      const declared = plan.map((b, i): BatchOutputs => ({ tensors: withKey[i] ? { rollout_log_probs: { dtype: 'F32', shape: [2] } } : {}, requests: parts[i].requests }));
      const mixed = withKey.some(Boolean) && !withKey.every(Boolean);
      if (!mixed) {
        expect(() => checkOutputAgreement(declared)).not.toThrow();
        expect(Object.keys(mergeRollouts(parts, total).batch).sort()).toEqual(withKey[0] ? ['latents_clean', 'rollout_log_probs'] : ['latents_clean']);
        return;
      }
      const withReqs = [...new Set(plan.flatMap((b, i) => (withKey[i] ? b.samples.map((s) => s.requestIndex) : [])))].sort((a, b) => a - b);
      const without = [...new Set(plan.flatMap((b, i) => (withKey[i] ? [] : b.samples.map((s) => s.requestIndex))))].sort((a, b) => a - b);
      const names = (list: number[]) => `${list.length === 1 ? 'request' : 'requests'} ${list.slice(0, 8).join(', ')}`;
      for (const f of [() => checkOutputAgreement(declared), () => mergeRollouts(parts, total)]) {
        expect(f).toThrow(`absent for ${names(without)}`);
        expect(f).toThrow(`F32[B, 2] for ${names(withReqs)}`);
      }
    }));
  });
});
