// The data-parallel executor: several inference threads behind one worker. A call split by samples
// merges back bit-identical to one worker; state changes reach every worker with one version; a
// worker that dies is reported, its part runs on the others, and it comes back with the same state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWorker, type OmniWorker } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { workerConfigs } from '../core/executor/data-parallel.ts';
import { splitBySamples } from '../core/executor/sample-split.ts';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import type { GenerateRequest } from '../core/protocol.ts';
import { SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectSameRollout } from './support/weights.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/data-parallel', import.meta.url));
const BASE = { loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1, defaults: { steps: 2 } } as const;

/** The whole rollout, tensors bit for bit and per-sample data and meta as values. */
function expectSameCall(a: Awaited<ReturnType<OmniWorker['generate']>>, b: Awaited<ReturnType<OmniWorker['generate']>>): void {
  expectSameRollout(a, b);
  expect(a.nonTensorBatch).toEqual(b.nonTensorBatch);
  expect(a.metaInfo).toEqual(b.metaInfo);
}

const request = fc.record({
  prompt: fc.constantFrom('a red circle', 'a blue square on the left', 'green'),
  seeds: fc.array(fc.integer({ min: 0, max: 1e6 }), { minLength: 1, maxLength: 4 }),
  steps: fc.constantFrom(1, 2),
  guidanceScale: fc.constantFrom(1, 4.5),
}) as fc.Arbitrary<GenerateRequest>;

describe('data-parallel generate', () => {
  let dp: OmniWorker;
  let one: OmniWorker;
  beforeAll(async () => {
    [dp, one] = await Promise.all([createWorker({ ...BASE, dataParallelSize: 3 }), createWorker({ ...BASE, executor: 'inline' })]);
  });
  afterAll(async () => { await Promise.all([dp?.close(), one?.close()]); });

  it('a call split across 3 workers by samples is bit-identical to one worker, in request order (any requests)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 5 }), async (requests) => {
      expectSameCall(await dp.generate(requests), await one.generate(requests));
    }), { numRuns: 12 });
  });

  it('requests without seeds get one first seed, shared by every part: seed + k per sample, as one worker gives', async () => {
    const r = await dp.generate([{ prompt: 'a red circle', numOutputsPerPrompt: 5 }]);
    const seeds = r.nonTensorBatch.seed as number[];
    expect(seeds.map((s) => s - seeds[0])).toEqual([0, 1, 2, 3, 4]);
    expectSameCall(r, await one.generate([{ prompt: 'a red circle', seeds }]));
  });

  it('tags each forwarded batch event with its worker: (worker, batchId) names one batch', async () => {
    const done: { worker?: number; batchId: number }[] = [];
    const steps = new Set<string>();
    const onDone = (e: { worker?: number; batchId: number }) => done.push(e);
    const onStep = (e: { worker?: number; batchId: number }) => steps.add(`${e.worker}:${e.batchId}`);
    dp.events.on('batchDone', onDone);
    dp.events.on('step', onStep);
    try {
      await dp.generate([{ prompt: 'a red circle', seeds: [1, 2, 3, 4, 5, 6] }]);
      await dp.generate([{ prompt: 'a red circle', seeds: [7, 8, 9] }]);
    } finally {
      dp.events.off('batchDone', onDone);
      dp.events.off('step', onStep);
    }
    const pairs = done.map((e) => `${e.worker}:${e.batchId}`);
    expect(new Set(done.map((e) => e.worker))).toEqual(new Set([0, 1, 2]));
    expect(new Set(pairs).size).toBe(pairs.length);
    expect(steps).toEqual(new Set(pairs));
  });

  it('collectiveRpc reaches every worker: one result per worker', async () => {
    const states = await dp.collectiveRpc('getState');
    expect(states).toHaveLength(3);
    expect(new Set(states.map((s) => s.weightsVersion)).size).toBe(1);
  });

  it('a bad request is refused naming the caller\'s request index and field; the worker serves on', async () => {
    const requests = [{ prompt: 'a', seed: 1 }, { prompt: 'b', seed: 2 }, { prompt: 'c', seed: 3, steps: 0 }, { prompt: 'd', seed: 4 }];
    await expect(dp.generate(requests)).rejects.toThrow(/^request 2: steps must be a positive integer, got 0/);
    await expect(dp.generate([{ prompt: 'a', seeds: [1, -1] }])).rejects.toThrow(/^request 0: seeds\[1\] must be a non-negative integer, got -1/);
    expect((await dp.generate([{ prompt: 'a', seed: 1 }])).length).toBe(1);
  });

  it('a weights update reaches every worker with one version; rollouts then match one worker with the same update', async () => {
    const weights = asRecord(dummyWeights(9).transformer);
    const [a, b] = await Promise.all([dp.executeMethod('loadWeights', { source: weights }), one.executeMethod('loadWeights', { source: weights })]);
    expect(a.weightsVersion).toBe(b.weightsVersion);
    expect((await dp.collectiveRpc('getState')).map((s) => s.weightsVersion)).toEqual([a.weightsVersion, a.weightsVersion, a.weightsVersion]);
    const requests = [{ prompt: 'a red circle', seeds: [1, 2, 3, 4] }, { prompt: 'green', seed: 9 }];
    expectSameCall(await dp.generate(requests), await one.generate(requests));
  });

  it('an upload staged in pieces reaches every worker: dropped by abort, then committed as one version', async () => {
    const weights = asRecord(dummyWeights(10).transformer);
    const names = Object.keys(weights);
    const v0 = (await dp.executeMethod('getState')).weightsVersion;
    for (const upload of ['dropped', 'kept']) {
      for (const n of names) await dp.executeMethodTransfer('loadWeights', [{ source: { [n]: weights[n] }, upload }], []);
    }
    expect(await dp.executeMethod('abortWeightUpdate', { upload: 'dropped' })).toEqual({ dropped: names.length, weightsVersion: v0 });
    expect((await dp.collectiveRpc('getState')).map((s) => s.weightsVersion)).toEqual([v0, v0, v0]);
    expect(await dp.executeMethod('finishWeightUpdate', { upload: 'kept' })).toMatchObject({ weightsVersion: v0 + 1, tensors: names.length });
    await one.executeMethod('loadWeights', { source: weights });
    const requests = [{ prompt: 'a red circle', seeds: [1, 2, 3] }];
    expectSameCall(await dp.generate(requests), await one.generate(requests));
  });

  it('a broadcast waits for the rollouts in flight: no rollout mixes weights versions', async () => {
    const before = (await dp.executeMethod('getState')).weightsVersion;
    const requests = Array.from({ length: 6 }, (_, i) => ({ prompt: 'a red circle', seed: i, steps: 3 }));
    const rollout = dp.generate(requests);
    const update = dp.executeMethod('loadWeights', { source: asRecord(dummyWeights(4).transformer) });
    const [r, u] = await Promise.all([rollout, update]);
    expect(r.metaInfo.weights_version).toBe(before);
    expect(u.weightsVersion).toBe(before + 1);
  });
});

describe('a data-parallel worker dies', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'dp-die-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is reported, its part runs on the others (same bytes), and it restarts with the weights the others serve', async () => {
    const plugins = ['dummy-loader', 'weight-sync', { module: 'die-once.ts', options: { marker: join(dir, 'died') } }];
    const dp = await createWorker({ ...BASE, baseDir: FIXTURES, plugins, dataParallelSize: 2 } as never);
    const one = await createWorker({ ...BASE, executor: 'inline', plugins: ['dummy-loader', 'weight-sync'] });
    try {
      const logs: string[] = [];
      dp.events.on('log', (l) => logs.push(l.message));
      const weights = asRecord(dummyWeights(5).transformer);
      // A trainer's bytes, handed over to move: the executor copies them (and keeps them for the replay).
      const bytes = serializeSafetensors(weights);
      await dp.executeMethodTransfer('loadWeights', [{ source: bytes }], [bytes.buffer as ArrayBuffer]);
      expect(bytes.byteLength).toBeGreaterThan(0);
      await one.executeMethod('loadWeights', { source: weights });
      // Samples 0-1 go to worker 0, 2-3 (with 'die once') to worker 1, which dies mid-rollout.
      const requests = [{ prompt: 'a red circle', seeds: [1, 2] }, { prompt: 'die once', seeds: [3, 4] }];
      expectSameCall(await dp.generate(requests), await one.generate(requests));
      expect(logs.some((m) => /data-parallel worker 1 \(cpu\) died: the inference thread exited \(code 7\)/.test(m))).toBe(true);
      await expect.poll(() => logs.some((m) => /data-parallel worker 1 restarted/.test(m)), { timeout: 20_000 }).toBe(true);
      const states = await dp.collectiveRpc('getState');
      expect(states.map((s) => s.weightsVersion)).toEqual([1, 1]);
      expectSameCall(await dp.generate(requests), await one.generate(requests));
    } finally {
      await Promise.all([dp.close(), one.close()]);
    }
  });
});

describe('data-parallel config', () => {
  it('devices name one worker each (cuda:N sets deviceId); dataParallelSize repeats device', () => {
    const byDevices = workerConfigs(resolveConfig({ devices: ['cuda:0', 'cuda:1', 'cpu'] }));
    expect(byDevices.map((c) => [c.device, c.deviceId])).toEqual([['cuda', 0], ['cuda', 1], ['cpu', undefined]]);
    expect(workerConfigs(resolveConfig({ dataParallelSize: 3 })).map((c) => c.device)).toEqual(['cpu', 'cpu', 'cpu']);
  });

  it('refuses both keys, inline with several workers, and a malformed device, naming them', () => {
    expect(() => workerConfigs(resolveConfig({ devices: ['cpu'], dataParallelSize: 2 }))).toThrow(/give devices \(1\) or dataParallelSize \(2\), not both/);
    expect(() => workerConfigs(resolveConfig({ dataParallelSize: 2, executor: 'inline' }))).toThrow(/2 data-parallel workers need executor 'thread'/);
    expect(() => resolveConfig({ devices: ['gpu0'] })).toThrow(/devices.*0.*must be 'cpu', 'webgpu', 'cuda' or 'cuda:N'/s);
  });

  it('splitting covers every sample once, in order, in near-equal contiguous parts', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 5 }), (counts, parts) => {
      const requests = counts.map((n, i) => ({ prompt: `p${i}`, seed: i * 100, numOutputsPerPrompt: n }));
      const split = splitBySamples(requests, parts, resolveConfig({}).limits);
      const flat = split.flatMap((p) => p.requests.flatMap((r, j) => (r.seeds as number[]).map((s) => [p.origin[j], s])));
      expect(flat).toEqual(counts.flatMap((n, i) => Array.from({ length: n }, (_, k) => [i, i * 100 + k])));
      const sizes = split.map((p) => p.end - p.start);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      split.forEach((p, i) => expect(p.start).toBe(i === 0 ? 0 : split[i - 1].end));
    }));
  });
});
