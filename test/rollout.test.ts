import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutData } from '../core/protocol.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { numel, type HostTensor } from '../core/tensors/tensor.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';

const rowOf = (t: HostTensor, b: number) => {
  const n = numel(t.shape.slice(1));
  return Buffer.from((t.data as Float32Array).slice(b * n, (b + 1) * n).buffer);
};

describe('dummy-model rollout end to end', () => {
  let w: WorkerWrapperBase;
  beforeAll(async () => { w = await inlineWorker({ maxBatchSize: 3 }); });
  afterAll(async () => { await w.close(); });
  const generate = (reqs: unknown[]) => w.executeMethod('generate', reqs) as Promise<RolloutData>;

  it('returns batch-first tensors of the right shapes and per-sample data', async () => {
    const r = await generate([{ prompt: 'a red circle', numOutputsPerPrompt: 2, seed: 10 }, { prompt: 'a blue square', seeds: [5] }]);
    const { height, width, channels, downscale } = SMALL_DUMMY;
    expect(r.batch.responses!.dtype).toBe('U8');
    expect(r.batch.responses!.shape).toEqual([3, 3, height, width]);
    expect(r.batch.latents_clean!.shape).toEqual([3, channels, height / downscale, width / downscale]);
    expect(r.batch.prompt_embeds!.shape).toEqual([3, 8, 16]);
    expect(r.batch.pooled_prompt_embeds!.shape).toEqual([3, 16]);
    expect(r.batch.negative_prompt_embeds!.shape).toEqual([3, 8, 16]);
    expect(r.nonTensorBatch.prompt).toEqual(['a red circle', 'a red circle', 'a blue square']);
    expect(r.nonTensorBatch.seed).toEqual([10, 11, 5]);
    expect(r.metaInfo.steps).toBe(4);
    expect((r.metaInfo.sigmas as number[]).length).toBe(5);
    expect(r.metaInfo.weights_version).toBe(0);
  });

  it('gives bitwise-identical output for the same seed', async () => {
    const a = await generate([{ prompt: 'a green star', seed: 42, numOutputsPerPrompt: 2 }]);
    const b = await generate([{ prompt: 'a green star', seed: 42, numOutputsPerPrompt: 2 }]);
    expect(Buffer.compare(Buffer.from(a.batch.latents_clean!.data.buffer), Buffer.from(b.batch.latents_clean!.data.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.batch.responses!.data.buffer), Buffer.from(b.batch.responses!.data.buffer))).toBe(0);
    const c = await generate([{ prompt: 'a green star', seed: 43 }]);
    expect(rowOf(c.batch.latents_clean!, 0).equals(rowOf(a.batch.latents_clean!, 0))).toBe(false);
  });

  it("keeps a sample's output independent of its batch's size and composition", async () => {
    const alone = await generate([{ prompt: 'a red circle', seeds: [7] }]);
    // maxBatchSize 3: the sample lands in a different batch, at a different row, beside other prompts.
    const crowd = await generate([
      { prompt: 'a blue square', seeds: [1, 2] },
      { prompt: 'a yellow heart', seeds: [3, 4, 5], guidanceScale: 4.5 },
      { prompt: 'a red circle', seeds: [7] },
    ]);
    expect(crowd.nonTensorBatch.seed).toEqual([1, 2, 3, 4, 5, 7]);
    expect(rowOf(crowd.batch.latents_clean!, 5).equals(rowOf(alone.batch.latents_clean!, 0))).toBe(true);
  });

  it('groups requests with different sampling parameters into separate batches', async () => {
    let batches = 0;
    const off = w.events.on('batchDone', () => batches++);
    const r = await generate([
      { prompt: 'a', seeds: [1] }, { prompt: 'b', seeds: [2], guidanceScale: 1 }, { prompt: 'c', seeds: [3] },
    ]);
    off.removeAllListeners('batchDone');
    expect(batches).toBe(2);
    expect(r.nonTensorBatch.guidance_scale).toEqual([4.5, 1, 4.5]);
    expect(r.metaInfo.guidance_scale).toBeUndefined();
  });

  it('encodes a repeated prompt once (prompt cache)', async () => {
    const cache = w.worker.runner.promptCache;
    await w.executeMethod('resetPromptCache');
    const before = cache.misses;
    await generate([{ prompt: 'a purple cross', numOutputsPerPrompt: 3, seed: 0 }]);
    await generate([{ prompt: 'a purple cross', numOutputsPerPrompt: 3, seed: 9 }]);
    // Two distinct prompts ("a purple cross" and the negative ""), each missed once.
    expect(cache.misses - before).toBe(2);
  });

  it('rejects bad requests with errors that name the field, and keeps serving', async () => {
    await expect(generate([{ prompt: 3 }])).rejects.toThrow(/request 0: prompt must be a string/);
    await expect(generate([{ prompt: 'x', steps: 0 }])).rejects.toThrow(/request 0: steps must be a positive integer/);
    await expect(generate([{ prompt: 'x' }, { prompt: 'y', seeds: [1, 2], numOutputsPerPrompt: 3 }])).rejects.toThrow(/request 1: seeds has 2 seeds for numOutputsPerPrompt 3/);
    await expect(generate([{ prompt: 'x', height: 15 }])).rejects.toThrow(/request 0: height 15 is not a multiple of 2/);
    await expect(generate([])).rejects.toThrow(/non-empty array/);
    const ok = await generate([{ prompt: 'x', seed: 1 }]);
    expect(ok.batch.responses!.shape[0]).toBe(1);
  });
});

describe('request options of plugins', () => {
  it('refuses a plugin option when the plugin is not loaded, instead of ignoring it', async () => {
    const bare = await inlineWorker({ plugins: ['dummy-loader'] });
    await expect(bare.executeMethod('generate', [{ prompt: 'x', seed: 1, sde: { type: 'sde' } }]))
      .rejects.toThrow(/request 0: option 'sde' is not read by core or any loaded plugin/);
    await bare.close();
    const full = await inlineWorker();
    const r = (await full.executeMethod('generate', [{ prompt: 'x', seed: 1, sde: { type: 'sde' } }])) as RolloutData;
    expect(r.metaInfo.sde_type).toBe('sde');
    await full.close();
  });
});
