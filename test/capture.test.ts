// The latent-capture plugin: what it records, where, and only when asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '../core/plugin.ts';
import type { RolloutData } from '../core/protocol.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { inlineWorker } from './support/inline-worker.ts';

const per = 4 * 8 * 8;
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/** Slot k of sample b of a [B, S, ...] tensor. */
const slot = (t: HostTensor, b: number, k: number) => (t.data as Float32Array).subarray((b * t.shape[1] + k) * per, (b * t.shape[1] + k + 1) * per);

describe('latent-capture', () => {
  let w: WorkerWrapperBase;
  const stepLatents: Float32Array[] = [];
  const stepLogProbs: (Float32Array | undefined)[] = [];
  let outputsAtStart: Record<string, HostTensor> = {};
  const spy = definePlugin({
    name: 'spy',
    apply({ hooks }) {
      hooks.beforeStep.tap('spy', (s) => { if (s.index === 0) outputsAtStart = { ...s.batch.outputs }; });
      hooks.afterStep.tap('spy', (_s, r) => { stepLatents.push(r.latents.slice()); stepLogProbs.push(r.logProbs?.slice()); });
    },
  });
  beforeAll(async () => { w = await inlineWorker({ maxBatchSize: 8 }, { spy }); });
  afterAll(async () => { await w.close(); });
  const generate = async (reqs: unknown[]) => {
    stepLatents.length = 0;
    stepLogProbs.length = 0;
    return (await w.executeMethod('generate', reqs)) as RolloutData;
  };

  it('adds nothing unless asked', async () => {
    const r = await generate([{ prompt: 'a red circle', seed: 1, steps: 3, sde: { type: 'sde' } }]);
    expect(Object.keys(r.batch).sort()).toEqual(['latents_clean', 'negative_pooled_prompt_embeds', 'negative_prompt_embeds', 'pooled_prompt_embeds', 'prompt_embeds', 'responses']);
    const only = await generate([{ prompt: 'a red circle', seed: 1, steps: 3, capture: { timesteps: true } }]);
    expect(only.batch.all_timesteps).toBeDefined();
    expect(only.batch.all_latents).toBeUndefined();
    expect(only.batch.rollout_log_probs).toBeUndefined();
  });

  it('records the whole ODE trajectory: initial noise, every step, final latents', async () => {
    const steps = 4;
    const r = await generate([{ prompt: 'a red circle', seeds: [5, 6], steps, capture: { latents: true, timesteps: true } }]);
    const lat = r.batch.all_latents;
    expect(lat!.shape).toEqual([2, steps + 1, 4, 8, 8]);
    expect(r.batch.all_timesteps!.shape).toEqual([2, steps]);
    const sigmas = r.metaInfo.sigmas as number[];
    expect(Array.from(r.batch.all_timesteps!.data as Float32Array)).toEqual([0, 1].flatMap(() => sigmas.slice(0, steps).map((s) => Math.fround(s * 1000))));
    for (let b = 0; b < 2; b++) {
      const noise = new Float32Array(per);
      fillGaussian([5, 6][b], 0, noise);
      expect(bytes(slot(lat!, b, 0)).equals(bytes(noise))).toBe(true);
      for (let k = 1; k <= steps; k++) expect(bytes(slot(lat!, b, k)).equals(bytes(stepLatents[k - 1].subarray(b * per, (b + 1) * per)))).toBe(true);
      expect(bytes(slot(lat!, b, steps)).equals(bytes((r.batch.latents_clean!.data as Float32Array).subarray(b * per, (b + 1) * per)))).toBe(true);
    }
  });

  it('records only each sample window: latents [B, W+1], timesteps and log-probs [B, W]', async () => {
    const r = await generate([{
      prompt: 'a green star', numOutputsPerPrompt: 3, seed: 24, steps: 8,
      sde: { type: 'sde', window: { size: 3, range: [0, 8] } }, capture: { latents: true, timesteps: true, logProbs: true },
    }]);
    const starts = r.nonTensorBatch.sde_window_start as number[];
    const sigmas = r.metaInfo.sigmas as number[];
    expect(r.batch.all_latents!.shape).toEqual([3, 4, 4, 8, 8]);
    expect(r.batch.rollout_log_probs!.shape).toEqual([3, 3]);
    for (let b = 0; b < 3; b++) {
      for (let k = 0; k < 3; k++) {
        const i = starts[b] + k;
        expect(r.batch.all_timesteps!.data[b * 3 + k]).toBe(Math.fround(sigmas[i] * 1000));
        expect(r.batch.rollout_log_probs!.data[b * 3 + k]).toBe(stepLogProbs[i]![b]);
        expect(bytes(slot(r.batch.all_latents!, b, k + 1)).equals(bytes(stepLatents[i].subarray(b * per, (b + 1) * per)))).toBe(true);
      }
      const before = starts[b] === 0 ? null : stepLatents[starts[b] - 1].subarray(b * per, (b + 1) * per);
      if (before) expect(bytes(slot(r.batch.all_latents!, b, 0)).equals(bytes(before))).toBe(true);
    }
    expect(Number.isFinite(Math.min(...r.batch.rollout_log_probs!.data as Float32Array))).toBe(true);
  });

  it('writes into buffers allocated before the first step, handed to the rollout as they are', async () => {
    const r = await generate([{ prompt: 'x', seed: 2, steps: 3, sde: { type: 'cps' }, capture: { latents: true, logProbs: true } }]);
    expect(outputsAtStart.all_latents).toBe(r.batch.all_latents);
    expect(outputsAtStart.rollout_log_probs).toBe(r.batch.rollout_log_probs);
  });

  it('drops the prompt embeddings when promptEmbeds is false', async () => {
    const r = await generate([{ prompt: 'x', seed: 2, steps: 2, capture: { promptEmbeds: false, latents: true } }]);
    expect(Object.keys(r.batch).sort()).toEqual(['all_latents', 'latents_clean', 'responses']);
  });

  it('refuses log-probs of deterministic steps and bad options, and keeps serving', async () => {
    await expect(w.executeMethod('generate', [{ prompt: 'x', capture: { logProbs: true } }]))
      .rejects.toThrow("request 0: capture.logProbs needs per-step log-probs, but the steps are deterministic: ask sde: { type: 'sde' | 'cps' }");
    await expect(w.executeMethod('generate', [{ prompt: 'x', sde: { type: 'sde', logProbs: false }, capture: { logProbs: true } }]))
      .rejects.toThrow('capture.logProbs needs per-step log-probs, but sde.logProbs is false');
    await expect(w.executeMethod('generate', [{ prompt: 'x', capture: { latent: true } }])).rejects.toThrow(/request 0: invalid capture option: capture: Unrecognized key.*latent/);
    await expect(w.executeMethod('generate', [{ prompt: 'x', capture: { latents: 'yes' } }])).rejects.toThrow(/capture\.latents: /);
    const ok = await generate([{ prompt: 'x', seed: 1, steps: 2, capture: { latents: true } }]);
    expect(ok.batch.all_latents!.shape[1]).toBe(3);
  });
});
