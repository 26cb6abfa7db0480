// Group rollouts (numOutputsPerPrompt): distinct seeds, one prompt encoding, and per-sample
// determinism: a sample's seed alone fixes its trajectory, whatever its batch size or batch-mates.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import type { RolloutData } from '../core/protocol.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { inlineWorker } from './support/inline-worker.ts';

const row = (t: HostTensor, b: number) => {
  const n = t.data.length / t.shape[0];
  const v = t.data.subarray(b * n, (b + 1) * n);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
};

const SDE = { steps: 6, sde: { type: 'sde', window: { size: 2, range: [0, 5] } }, capture: { latents: true, timesteps: true, logProbs: true } };
const TARGET = { prompt: 'a red circle', seeds: [1234] };

describe('group rollouts', () => {
  const workers: WorkerWrapperBase[] = [];
  let w16: WorkerWrapperBase;
  beforeAll(async () => {
    for (const maxBatchSize of [16, 1, 3]) workers.push(await inlineWorker({ maxBatchSize }));
    [w16] = workers;
  });
  afterAll(async () => { await Promise.all(workers.map((w) => w.close())); });
  const generate = async (w: WorkerWrapperBase, reqs: unknown[]) => (await w.executeMethod('generate', reqs)) as RolloutData;

  it('gives each sample of a group its own seed and its own image', async () => {
    const r = await generate(w16, [{ prompt: 'a blue square', numOutputsPerPrompt: 6, seed: 100 }]);
    expect(r.nonTensorBatch.seed).toEqual([100, 101, 102, 103, 104, 105]);
    expect(r.nonTensorBatch.prompt).toEqual(Array(6).fill('a blue square'));
    const images = new Set([0, 1, 2, 3, 4, 5].map((b) => row(r.batch.responses!, b).toString('hex')));
    expect(images.size).toBe(6);
    // Without a seed, fresh random seeds, returned so that the samples can be replayed.
    const fresh = await generate(w16, [{ prompt: 'a blue square', numOutputsPerPrompt: 3 }]);
    const seeds = fresh.nonTensorBatch.seed as number[];
    expect(new Set(seeds).size).toBe(3);
    const replay = await generate(w16, [{ prompt: 'a blue square', seeds }]);
    expect(row(replay.batch.latents_clean!, 2).equals(row(fresh.batch.latents_clean!, 2))).toBe(true);
  });

  it('encodes the prompt of a group once, in one text-encoder run', async () => {
    await w16.executeMethod('resetPromptCache');
    const encoder = w16.worker.model.components.text_encoder;
    const run = vi.spyOn(encoder, 'run');
    try {
      await generate(w16, [{ prompt: 'a yellow heart', numOutputsPerPrompt: 8, seed: 0 }]);
      expect(run).toHaveBeenCalledTimes(1);
      const ids = run.mock.calls[0][0].input_ids;
      expect(ids.shape[0]).toBe(2); // the prompt and the negative "", not 16 rows
      await generate(w16, [{ prompt: 'a yellow heart', numOutputsPerPrompt: 8, seed: 50 }]);
      expect(run).toHaveBeenCalledTimes(1); // cached
    } finally {
      run.mockRestore();
    }
  });

  for (const [name, extra] of [['ODE', {}], ['ODE without CFG (one transformer row alone)', { guidanceScale: 1 }], ['SDE with a window and log-probs', SDE]] as const) {
    it(`fixes a sample's ${name} trajectory by its seed, whatever the batch size or composition`, async () => {
      const keys = ['latents_clean', 'responses', ...('capture' in extra ? ['all_latents', 'all_timesteps', 'rollout_log_probs'] : [])];
      const alone = await generate(w16, [{ ...TARGET, ...extra }]);
      const layouts: [WorkerWrapperBase, unknown[], number][] = [
        // in a group of its own prompt, at position 2
        [w16, [{ prompt: 'a red circle', seeds: [5, 6, 1234, 7], ...extra }], 2],
        // among other prompts, negatives and seeds, in one batch of 9
        [w16, [{ prompt: 'a blue square', numOutputsPerPrompt: 4, seed: 40, ...extra }, { ...TARGET, ...extra }, { prompt: 'a cat', negativePrompt: 'a dog', numOutputsPerPrompt: 4, seed: 9, ...extra }], 4],
        // batch size 1 and batch size 3 (the target shares its batch with two others)
        [workers[1], [{ prompt: 'x', seed: 3, ...extra }, { ...TARGET, ...extra }], 1],
        [workers[2], [{ prompt: 'x', numOutputsPerPrompt: 4, seed: 3, ...extra }, { ...TARGET, ...extra }, { prompt: 'y', seed: 1, ...extra }], 4],
      ];
      for (const [w, reqs, at] of layouts) {
        const r = await generate(w, reqs);
        expect(r.nonTensorBatch.seed![at]).toBe(1234);
        // Bit for bit: the sample's rows in the mixed call are its rows alone.
        for (const key of keys) expect(row(r.batch[key], at).equals(row(alone.batch[key], 0)), `${key} of layout ${layouts.findIndex((l) => l[1] === reqs)}`).toBe(true);
        if ('sde' in extra) expect((r.nonTensorBatch.sde_window_start as number[])[at]).toBe((alone.nonTensorBatch.sde_window_start as number[])[0]);
      }
    });
  }

  it('keeps a sample bit for bit the same over random batch layouts (fast-check)', async () => {
    const filler = fc.record({
      prompt: fc.constantFrom('a cat', 'a blue square', 'x'),
      negativePrompt: fc.constantFrom('', 'a dog'),
      numOutputsPerPrompt: fc.integer({ min: 1, max: 3 }),
      seed: fc.integer({ min: 0, max: 1000 }),
    });
    const modes = [{}, { guidanceScale: 1 }, SDE];
    const alone = await Promise.all(modes.map((extra) => generate(w16, [{ ...TARGET, ...extra }])));
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.array(filler, { maxLength: 4 }), fc.nat(),
      async (mode, worker, fillers, pos) => {
        const extra = modes[mode];
        const at = pos % (fillers.length + 1);
        const reqs = [...fillers.slice(0, at), TARGET, ...fillers.slice(at)].map((r) => ({ ...r, ...extra }));
        const row0 = fillers.slice(0, at).reduce((n, f) => n + f.numOutputsPerPrompt, 0);
        const r = await generate(workers[worker], reqs);
        expect(r.nonTensorBatch.seed![row0]).toBe(1234);
        for (const key of Object.keys(alone[mode].batch)) {
          expect(row(r.batch[key], row0).equals(row(alone[mode].batch[key], 0)), key).toBe(true);
        }
      },
    ), { numRuns: 24 });
  });
});
