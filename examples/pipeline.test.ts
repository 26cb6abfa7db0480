// A unit test of a pipeline on the dummy loader, as a plugin author would write it:
// no model files, a seeded random model of a chosen size, the real denoise loop.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WorkerWrapperBase, parseConfig, BUILTIN_PLUGINS, type RolloutData } from '../index.ts';

let worker: WorkerWrapperBase;
beforeAll(async () => {
  const config = parseConfig({
    loadFormat: 'dummy',
    loadOptions: { seed: 3, height: 8, width: 8, downscale: 1, channels: 3, hidden: 16, layers: 1 },
    plugins: ['dummy-loader'],
    executor: 'inline',
    threads: 1,
  });
  worker = await WorkerWrapperBase.create(config, { registry: BUILTIN_PLUGINS });
});
afterAll(() => worker.close());

it('denoises toward different images for different prompts', async () => {
  const r = (await worker.executeMethod('generate', [
    { prompt: 'a red circle', seed: 1, steps: 3 },
    { prompt: 'a blue square', seed: 1, steps: 3 },
  ])) as RolloutData;
  expect(r.batch.responses!.shape).toEqual([2, 3, 8, 8]);
  const [a, b] = [0, 1].map((i) => r.batch.responses!.data.slice(i * 192, (i + 1) * 192));
  expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(false);
});

it('records every step through the afterStep hook', async () => {
  const sigmas: number[] = [];
  worker.hooks.afterStep.tap('test', (s) => { sigmas.push(s.sigma); });
  await worker.executeMethod('generate', [{ prompt: 'a red circle', seed: 1, steps: 5 }]);
  expect(sigmas).toHaveLength(5);
  expect(sigmas[0]).toBe(1);
  expect(sigmas.every((s, i) => i === 0 || s < sigmas[i - 1])).toBe(true);
});
