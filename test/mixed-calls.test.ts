// One generate call with mixed requests, on the dummy model: refused up front (no batch runs)
// when its samples would return different tensors; saved whole when they return the same
// tensors with different meta; bounded inputs; non-finite inputs refused and outputs reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RolloutData } from '../core/protocol.ts';
import { definePlugin } from '../core/plugin.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { inlineWorker } from './support/inline-worker.ts';

const SDE_LOGPROBS = { prompt: 'a cat', seed: 2, sde: { type: 'sde' }, capture: { logProbs: true } };
const PLAIN = { prompt: 'a dog', seed: 1 };

/** Poisons the initial latents of the sample whose seed is 666 (a model that overflows for it). */
const poison = definePlugin({
  name: 'poison',
  apply({ hooks }) {
    hooks.prepareLatents.tap('poison', (latents, ctx) => {
      const per = latents.length / ctx.samples.length;
      ctx.samples.forEach((s, b) => { if (s.seed === 666) latents[b * per + 5] = NaN; });
      return latents;
    });
  },
});

describe('mixed generate calls', () => {
  let w: WorkerWrapperBase;
  let dir: string;
  let batches = 0;
  const count = () => { batches++; };
  const generate = (reqs: unknown[]) => w.executeMethod('generate', reqs) as Promise<RolloutData>;
  /** The call is refused with `pattern` and no batch ran. */
  const refused = async (reqs: unknown[], pattern: RegExp | string) => {
    batches = 0;
    await expect(generate(reqs)).rejects.toThrow(pattern);
    expect(batches).toBe(0);
  };

  beforeAll(async () => {
    w = await inlineWorker({ limits: { maxSamplesPerCall: 64, maxSteps: 50 } }, { poison });
    w.events.on('batchDone', count);
    dir = await mkdtemp(join(tmpdir(), 'omni-mixed-'));
  });
  afterAll(async () => {
    w.events.off('batchDone', count);
    await w.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses, before any batch runs and in either order, requests whose rollouts hold different tensors', async () => {
    for (const [reqs, plain, other] of [[[PLAIN, SDE_LOGPROBS], 0, 1], [[SDE_LOGPROBS, PLAIN], 1, 0]] as const) {
      await refused([...reqs], `'rollout_log_probs' is`);
      await refused([...reqs], new RegExp(`absent for request ${plain}\\b`));
      await refused([...reqs], new RegExp(`F32\\[B, 4\\] for request ${other}\\b`));
    }
    await refused([PLAIN, { ...PLAIN, capture: { latents: true } }], /'all_latents' is absent for request 0 but F32\[B, 5, 4, 8, 8\] for request 1/);
    await refused([PLAIN, { ...PLAIN, capture: { promptEmbeds: false } }], /'negative_pooled_prompt_embeds' is F32\[B, 16\] for request 0 but absent for request 1/);
    // A window of 2 recorded steps beside every step recorded: all_latents differ in shape.
    await refused([{ ...SDE_LOGPROBS, capture: { latents: true } }, { ...SDE_LOGPROBS, capture: { latents: true }, sde: { type: 'sde', window: { size: 2, range: [0, 4] } } }],
      /'all_latents' is F32\[B, 5, 4, 8, 8\] for request 0 but F32\[B, 3, 4, 8, 8\] for request 1/);
    // The worker keeps serving, and the same requests work in their own calls.
    expect((await generate([SDE_LOGPROBS])).batch.rollout_log_probs!.shape).toEqual([1, 4]);
    expect((await generate([PLAIN])).batch.rollout_log_probs).toBeUndefined();
  });

  it('returns a mixed call with the same tensors whole and savable, per-sample data null where a batch has none', async () => {
    const windowed = { prompt: 'a cat', seeds: [3, 4], sde: { type: 'sde', window: { size: 2, range: [0, 4] } }, capture: { latents: true, logProbs: true } };
    const full = { prompt: 'a dog', seed: 9, sde: { type: 'sde', window: { size: 2, range: [1, 4] } }, capture: { latents: true, logProbs: true } };
    const noWindow = { prompt: 'a red car', seed: 5, sde: { type: 'cps' }, steps: 2, capture: { latents: true, logProbs: true } };
    const r = await generate([windowed, full, noWindow]);
    expect(r.batch.all_latents!.shape).toEqual([4, 3, 4, 8, 8]);
    expect(r.nonTensorBatch.sde_window_start).toHaveLength(4);
    expect(r.nonTensorBatch.sde_window_start![3]).toBeNull();
    expect(r.nonTensorBatch.sde_window_range).toStrictEqual([[0, 4], [0, 4], [1, 4], null]);
    expect(r.nonTensorBatch.sde_type).toStrictEqual(['sde', 'sde', 'sde', 'cps']);
    const path = join(dir, 'mixed.safetensors');
    await new RolloutBatch(r).save(path);
    const back = await RolloutBatch.load(path);
    expect(back.nonTensorBatch).toEqual(r.nonTensorBatch);
    expect(back.metaInfo).toEqual(r.metaInfo);
  });

  it('refuses unbounded and non-finite inputs before any work, naming the request and field', async () => {
    const t0 = performance.now();
    await refused([PLAIN, { prompt: 'x', numOutputsPerPrompt: 1e9 }], /request 1: numOutputsPerPrompt = 1000000000 is over limits.maxSamplesPerCall \(64\)/);
    await refused([{ prompt: 'x', steps: 100000 }], /request 0: steps 100000 is over limits.maxSteps \(50\)/);
    await refused([{ prompt: 'x', height: 8192, width: 8192 }], /request 0: height 8192 is over limits.maxHeight \(4096\)/);
    // The dummy graph fixes 8x8 latents: 16x16 images only.
    await refused([PLAIN, { prompt: 'x', height: 32, width: 32 }], /request 1: height 32 does not fit the model: its graphs take images of 16x16/);
    expect(performance.now() - t0).toBeLessThan(2000);
    await refused([{ prompt: 'x', guidanceScale: Infinity }], /request 0: guidanceScale must be a finite number >= 0, got Infinity/);
    // Finite as a double, Infinity as the float32 the graphs compute in.
    await refused([PLAIN, { prompt: 'x', guidanceScale: 1e300 }], /request 1: guidanceScale = 1e\+300 is beyond float32's range/);
    await refused([{ prompt: 'x', sde: { type: 'sde', noiseLevel: 1e6 } }], /request 0: invalid sde option: sde\.noiseLevel: must be at most 1/);
    await refused([PLAIN, { prompt: 'x', lora: { name: 'any', scale: 1e30 } }], /request 1: lora\.scale 1e\+30 is beyond \+-10/);
    await refused([{ prompt: 'x', seed: 2 ** 53 - 1, numOutputsPerPrompt: 3 }], /request 0: seed = 9007199254740991 with 3 samples needs seeds up to/);
    await refused([{ prompt: 'x', seeds: [] }], /request 0: seeds is empty/);
    await refused([PLAIN, { prompt: 'x', seeds: [] }], /request 1: seeds is empty/);
    expect((await generate([PLAIN])).batch.responses!.shape).toEqual([1, 3, 16, 16]);
  });

  it('reports non-finite outputs as an error naming the request, sample and seed, and keeps serving', async () => {
    await expect(generate([PLAIN, { prompt: 'a cat', seeds: [7, 666] }])).rejects.toThrow(
      /non-finite values: request 1 sample 1 \(seed 666\): latents_clean holds NaN at \[\d+, \d+, \d+\] of the sample/);
    expect((await generate([{ prompt: 'a cat', seeds: [7] }])).batch.latents_clean!.shape).toEqual([1, 4, 8, 8]);
  });
});
