// Where the data-parallel executor places a generate call's parts (fake workers that answer when
// told): the calls made together share the idle workers, whole to the least loaded when there are
// more calls than idle workers ('idle'); across every worker whatever their load ('all'); loads
// are released when parts end, failed or not.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../core/config/load-config.ts';
import { DataParallelExecutor, workerConfigs } from '../core/executor/data-parallel.ts';
import type { Executor, RegistryRef } from '../core/executor/executor.ts';
import { WorkerEvents } from '../core/events.ts';
import type { GenerateRequest, RolloutData } from '../core/protocol.ts';

/** A worker whose generate calls wait until answered; each answer carries the part's seeds. */
class HeldWorker implements Executor {
  readonly events = new WorkerEvents();
  readonly held: { seeds: number[]; answer: () => void; fail: (e: Error) => void }[] = [];

  call(method: string, args: unknown[]): Promise<unknown> {
    if (method !== 'generate') return Promise.resolve(null);
    const seeds = (args[0] as GenerateRequest[]).flatMap((r) => r.seeds as number[]);
    return new Promise<RolloutData>((resolve, reject) => {
      const rollout = { batch: { seed: { dtype: 'F32' as const, shape: [seeds.length], data: Float32Array.from(seeds) } }, nonTensorBatch: {}, metaInfo: {} };
      this.held.push({ seeds, answer: () => resolve(rollout), fail: reject });
    });
  }

  async close(): Promise<void> {}
}

async function start(workers: number, split: 'idle' | 'all'): Promise<{ dp: DataParallelExecutor; fakes: HeldWorker[] }> {
  const fakes: HeldWorker[] = [];
  const configs = workerConfigs(resolveConfig({ dataParallelSize: workers, dataParallelSplit: split }));
  const dp = await DataParallelExecutor.start(configs, {} as RegistryRef, { startWorker: async () => { const f = new HeldWorker(); fakes.push(f); return f; } });
  return { dp, fakes };
}

const call = (dp: DataParallelExecutor, seeds: number[]) => dp.call('generate', [[{ prompt: 'p', seeds }]]) as Promise<RolloutData>;
/** Lets the executor place the calls made so far (at the end of the turn) and hand the parts over. */
const settle = async () => { for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r)); };
const seedsOn = (fakes: HeldWorker[]) => fakes.map((f) => f.held.map((h) => h.seeds));
const answerAll = (fakes: HeldWorker[]) => { for (const f of fakes) for (const h of f.held.splice(0)) h.answer(); };
/** The seeds a merged rollout carries, in row order. */
const seedsOf = (r: RolloutData) => Array.from(r.batch.seed.data as Float32Array);
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('data-parallel placement', () => {
  it("'idle': a lone call is split across every idle worker; a call made while all are busy goes whole to the least loaded", async () => {
    const { dp, fakes } = await start(4, 'idle');
    const a = call(dp, range(0, 8));
    await settle();
    expect(seedsOn(fakes)).toEqual([[[0, 1]], [[2, 3]], [[4, 5]], [[6, 7]]]);
    const b = call(dp, range(100, 8));
    await settle();
    expect(fakes[0].held.map((h) => h.seeds)).toEqual([[0, 1], range(100, 8)]);
    // Worker 0 now holds 10 samples: the next whole call goes to worker 1.
    const c = call(dp, [200, 201]);
    await settle();
    expect(fakes[1].held.map((h) => h.seeds)).toEqual([[2, 3], [200, 201]]);
    answerAll(fakes);
    expect(seedsOf(await a)).toEqual(range(0, 8));
    expect(seedsOf(await b)).toEqual(range(100, 8));
    expect(seedsOf(await c)).toEqual([200, 201]);
    // Every load released: the next call is split four ways again.
    const d = call(dp, range(300, 4));
    await settle();
    expect(seedsOn(fakes)).toEqual([[[300]], [[301]], [[302]], [[303]]]);
    answerAll(fakes);
    await d;
    await dp.close();
  });

  it("'idle': calls made together share the idle workers; a burst of more calls than workers goes whole and evenly, small calls included", async () => {
    const { dp, fakes } = await start(4, 'idle');
    const pair = [call(dp, range(0, 8)), call(dp, range(10, 8))];
    await settle();
    expect(seedsOn(fakes)).toEqual([[range(0, 4)], [range(4, 4)], [range(10, 4)], [range(14, 4)]]);
    answerAll(fakes);
    expect((await Promise.all(pair)).map(seedsOf)).toEqual([range(0, 8), range(10, 8)]);
    // Eight calls of 16 on four workers: two whole calls each (split four ways each, the same
    // samples would run as batches of 4); four calls of one sample: one each, not all on the first.
    const burst = Array.from({ length: 8 }, (_, k) => call(dp, range(100 * (k + 1), 16)));
    await settle();
    expect(seedsOn(fakes)).toEqual([0, 1, 2, 3].map((w) => [range(100 * (w + 1), 16), range(100 * (w + 5), 16)]));
    answerAll(fakes);
    expect((await Promise.all(burst)).map(seedsOf)).toEqual(Array.from({ length: 8 }, (_, k) => range(100 * (k + 1), 16)));
    const singles = [call(dp, [1]), call(dp, [2]), call(dp, [3]), call(dp, [4])];
    await settle();
    expect(seedsOn(fakes)).toEqual([[[1]], [[2]], [[3]], [[4]]]);
    answerAll(fakes);
    expect((await Promise.all(singles)).map(seedsOf)).toEqual([[1], [2], [3], [4]]);
    await dp.close();
  });

  it("'all': every call is split across every worker, busy or not", async () => {
    const { dp, fakes } = await start(3, 'all');
    const calls = [call(dp, range(0, 6)), call(dp, range(10, 3))];
    await settle();
    expect(seedsOn(fakes)).toEqual([[[0, 1], [10]], [[2, 3], [11]], [[4, 5], [12]]]);
    answerAll(fakes);
    expect((await Promise.all(calls)).map(seedsOf)).toEqual([range(0, 6), range(10, 3)]);
    await dp.close();
  });

  it('a part that fails releases its load: the call fails naming the error, the next call is split across every worker', async () => {
    const { dp, fakes } = await start(2, 'idle');
    const failing = call(dp, [1, 2]);
    await settle();
    fakes[0].held.shift()!.fail(new Error('request 0: prompt refused'));
    fakes[1].held.shift()!.answer();
    await expect(failing).rejects.toThrow(/request 0: prompt refused/);
    const next = call(dp, [3, 4]);
    await settle();
    expect(seedsOn(fakes)).toEqual([[[3]], [[4]]]);
    answerAll(fakes);
    await next;
    await dp.close();
  });
});
