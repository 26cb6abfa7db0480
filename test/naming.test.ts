// One naming scheme: requests, RPC arguments and RPC results are camelCase; rollout data (the
// tensors, per-sample data and meta that go to Python trainers) is snake_case, as verl's
// DataProto. Other libraries' names for request keys are refused with the name to use.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import type { RolloutData } from '../core/protocol.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { scoreArgsFromRollout } from '../plugins/sde-scheduler/score-args.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';

const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const CAMEL = /^[a-z][a-zA-Z0-9]*$/;
const FIXTURES = fileURLToPath(new URL('./fixtures/lora/', import.meta.url));
const REQUEST = { prompt: 'a red circle', seed: 1, steps: 4 };

let w: WorkerWrapperBase;
beforeAll(async () => {
  w = await inlineWorker({ loadOptions: { ...SMALL_DUMMY, seed: 1 }, plugins: ['dummy-loader', 'sde-scheduler', 'latent-capture', 'weight-sync', 'sleep-mode', { name: 'lora', options: { roots: [FIXTURES] } }] });
});
afterAll(() => w.close());

describe('request names', () => {
  it("refuses diffusers' and vLLM's names, a key in another case and a typo, naming the key to use, before any batch runs", async () => {
    let batches = 0;
    w.events.on('batchDone', () => batches++);
    const cases: [Record<string, unknown>, string][] = [
      [{ num_inference_steps: 20 }, 'steps'],
      [{ guidance_scale: 4.5 }, 'guidanceScale'],
      [{ num_images_per_prompt: 4 }, 'numOutputsPerPrompt'],
      [{ n: 4 }, 'numOutputsPerPrompt'],
      [{ negative_prompt: 'blurry' }, 'negativePrompt'],
      [{ true_cfg_scale: 4 }, 'guidanceScale'],
      [{ GuidanceScale: 4 }, 'guidanceScale'],
      [{ captrue: { latents: true } }, 'capture'],
    ];
    for (const [extra, use] of cases) {
      const key = Object.keys(extra)[0];
      await expect(w.executeMethod('generate', [REQUEST, { ...REQUEST, ...extra }]), key)
        .rejects.toThrow(new RegExp(`^request 1: option '${key}' is not read by core or any loaded plugin; did you mean '${use}'\\?`));
    }
    await expect(w.executeMethod('generate', [{ ...REQUEST, num_inference_steps: 20 }])).rejects.toThrow("did you mean 'steps'? (that is diffusers' or vLLM's name; requests are camelCase)");
    await expect(w.executeMethod('generate', [{ ...REQUEST, zzzzzz: 1 }])).rejects.toThrow(/^request 0: option 'zzzzzz' is not read by core or any loaded plugin \(known: prompt, /);
    expect(batches).toBe(0);
  });
});

describe('rollout data is snake_case, RPC results camelCase', () => {
  it('names every key of a rollout in snake_case', async () => {
    await w.executeMethod('addLora', { name: 'attn', path: 'attn-r4' });
    const r = (await w.executeMethod('generate', [{
      ...REQUEST, numOutputsPerPrompt: 2, lora: 'attn',
      sde: { type: 'sde', window: { size: 2, range: [0, 3] } }, capture: { latents: true, timesteps: true, logProbs: true },
    }])) as RolloutData;
    const keys = [...Object.keys(r.batch), ...Object.keys(r.nonTensorBatch), ...Object.keys(r.metaInfo)];
    expect(keys).toEqual(expect.arrayContaining(['responses', 'all_latents', 'rollout_log_probs', 'sde_window_start', 'weights_version', 'sde_type', 'lora']));
    expect(keys.filter((k) => !SNAKE.test(k))).toEqual([]);
  });

  it('names every key of an RPC result in camelCase', async () => {
    const r = (await w.executeMethod('generate', [{ ...REQUEST, sde: { type: 'sde' }, capture: { latents: true, logProbs: true } }])) as RolloutData;
    const weights = serializeSafetensors(w.worker.weights.get('transformer')!);
    const results: [string, unknown][] = [
      ['getState', await w.executeMethod('getState')],
      ['computeLogProbs', await w.executeMethod('computeLogProbs', scoreArgsFromRollout(r))],
      ['loadWeights', await w.executeMethod('loadWeights', { source: weights, bucket: true })],
      ['finishWeightUpdate', await w.executeMethod('finishWeightUpdate')],
      ['abortWeightUpdate', await w.executeMethod('abortWeightUpdate')],
      ['listLoras', await w.executeMethod('listLoras')],
      ['addLora', await w.executeMethod('addLora', { name: 'ff', path: 'ff-rslora-bf16' })],
      ['sleep', await w.executeMethod('sleep', { level: 1 })],
      ['sleepState', await w.executeMethod('sleepState')],
      ['wakeUp', await w.executeMethod('wakeUp')],
    ];
    const bad = results.flatMap(([method, result]) => Object.keys(result as object).filter((k) => !CAMEL.test(k)).map((k) => `${method}.${k}`));
    expect(bad).toEqual([]);
    expect(results.find(([m]) => m === 'finishWeightUpdate')![1]).toMatchObject({ weightsVersion: 1 });
  });
});
