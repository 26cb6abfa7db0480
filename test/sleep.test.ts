import { afterEach, describe, expect, it } from 'vitest';
import type { RolloutData } from '../core/protocol.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { weightBytes } from '../core/model/weights.ts';
import { createWorker } from '../index.ts';
import type { SleepResult } from '../plugins/sleep-mode/index.ts';
import { definePlugin } from '../core/plugin.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectSameRollout, REQUESTS } from './support/weights.ts';

const A = { ...SMALL_DUMMY, seed: 1 };
const COMPONENTS = ['text_encoder', 'transformer', 'decoder'] as const;

describe('sleep-mode', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => { await Promise.all(open.splice(0).map((w) => w.close())); });
  async function worker(loadOptions: Record<string, number> = A): Promise<WorkerWrapperBase> {
    const w = await inlineWorker({ loadOptions });
    open.push(w);
    return w;
  }
  const gen = (w: WorkerWrapperBase, reqs: unknown[] = REQUESTS) => w.executeMethod('generate', reqs) as Promise<RolloutData>;
  const sleep = (w: WorkerWrapperBase, args?: unknown) => w.executeMethod('sleep', args) as Promise<SleepResult>;
  const wake = (w: WorkerWrapperBase, arg?: unknown) => w.executeMethod('wakeUp', arg) as Promise<{ restored: string[]; awake: boolean; asleep?: string; weightsVersion: number }>;
  const state = async (w: WorkerWrapperBase) => ((await w.executeMethod('getState')) as { state: string }).state;

  it('level 1: releases the sessions, keeps the weights, and wakes to bitwise-identical output', async () => {
    const w = await worker();
    const before = await gen(w);
    const weights = w.worker.weights.set;
    const r = await sleep(w, { level: 1 });
    expect(r).toMatchObject({ level: 1, released: ['sessions'], accountedBytes: 0, drained: 0 });
    expect(w.worker.componentsList.some((c) => c.isOpen)).toBe(false);
    expect(w.worker.weights.set).toBe(weights);
    expect(await state(w)).toBe('sleeping');
    await expect(gen(w)).rejects.toThrow(/the worker is asleep: its sessions are released \(wakeUp\(\{ tags: \['sessions'\] \}\)\)/);
    expect(await wake(w)).toMatchObject({ restored: ['sessions'], awake: true, weightsVersion: 0 });
    expect(await state(w)).toBe('ready');
    expectSameRollout(await gen(w), before);
  });

  it('level 2: drops the weights; loading the same weights after a sessions-only wake gives identical output', async () => {
    const w = await worker();
    const before = await gen(w);
    const held = COMPONENTS.reduce((s, c) => s + weightBytes(w.worker.weights.get(c)), 0);
    const r = await sleep(w, { level: 2 });
    expect(r).toMatchObject({ level: 2, released: ['sessions', 'weights'], accountedBytes: held, weightsBytes: held });
    expect(w.worker.weights.set).toEqual({});
    expect(await w.executeMethod('sleepState')).toMatchObject({ asleep: true, level: 2, weightsMissing: [...COMPONENTS] });
    expect(await wake(w, ['sessions'])).toMatchObject({ restored: ['sessions'], awake: false, asleep: expect.stringMatching(/weights of text_encoder, transformer, decoder are dropped/) });
    await expect(gen(w)).rejects.toThrow(/the worker is asleep: the weights of text_encoder, transformer, decoder are dropped/);
    // A partial update has nothing to complete it while the weights are gone.
    const wA = dummyWeights(1);
    await expect(w.executeMethod('loadWeights', { source: { 'proj_out.weight': wA.transformer.get('proj_out.weight') } }))
      .rejects.toThrow(/transformer has no weights now .* 15 of 16 parameters missing/);
    for (const c of COMPONENTS) await w.executeMethod('loadWeights', { component: c, source: asRecord(wA[c]), bucket: true });
    await w.executeMethod('finishWeightUpdate');
    expect(await state(w)).toBe('ready');
    const after = await gen(w);
    expectSameRollout(after, before);
    expect(after.metaInfo.weights_version).toBe(1);
  });

  it('level 2: wakeUp(["weights"]) reloads the checkpoint, then sessions; also all at once', async () => {
    const w = await worker();
    const before = await gen(w);
    await sleep(w, { level: 2 });
    expect(await wake(w, { tags: ['weights'] })).toMatchObject({ restored: ['weights'], awake: false });
    await expect(gen(w)).rejects.toThrow(/sessions are released/);
    expect(await wake(w, { tags: ['kv_cache'] })).toMatchObject({ restored: ['sessions'], awake: true });
    expectSameRollout(await gen(w), before);
    await sleep(w, { level: 2 });
    expect(await wake(w)).toMatchObject({ restored: ['weights', 'sessions'], awake: true });
    expectSameRollout(await gen(w), before);
  });

  it('frees at least 95% of the weights\' host memory at level 2, measured', async () => {
    const w = await worker({ ...A, hidden: 256, layers: 4 });
    await gen(w, [{ prompt: 'a', seed: 1, steps: 1 }]);
    const r = await sleep(w, { level: 2 });
    expect(r.weightsBytes).toBeGreaterThan(4e6);
    expect(r.host.arrayBuffers).toBeGreaterThanOrEqual(0.95 * r.weightsBytes);
    expect(r.freedBytes).toBeGreaterThanOrEqual(r.host.external);
    expect(r.seconds).toBeGreaterThanOrEqual(0);
  });

  it('handles sleep and wake out of order: no-ops, deepening, and clear errors', async () => {
    const w = await worker();
    const before = await gen(w);
    expect(await wake(w)).toMatchObject({ restored: [], awake: true }); // awake already: no-op
    await sleep(w); // level 1 by default
    expect(await sleep(w, { level: 1 })).toMatchObject({ released: [], accountedBytes: 0 }); // nothing left to release
    expect(await sleep(w, { level: 2 })).toMatchObject({ released: ['weights'] }); // deepens
    await expect(sleep(w, { level: 3 })).rejects.toThrow(/^sleep: invalid arguments: level: must be 1 or 2, got 3$/);
    await expect(sleep(w, { level: 1, mode: 'later' })).rejects.toThrow(/^sleep: invalid arguments: mode: must be 'wait' or 'abort'/);
    await expect(sleep(w, { level: 1, depth: 1 })).rejects.toThrow(/depth/);
    await expect(wake(w, ['gpu'])).rejects.toThrow(/unknown tag "gpu" \(known: weights, sessions, kv_cache\)/);
    await expect(wake(w, { tags: [] })).rejects.toThrow(/non-empty array/);
    const first = sleep(w, { level: 2 });
    await expect(sleep(w, { level: 1 })).rejects.toThrow(/a sleep is already in progress/);
    await expect(wake(w)).rejects.toThrow(/a sleep is in progress/);
    await first;
    await wake(w);
    expectSameRollout(await gen(w), before);
  });

  it('awaits rollouts in flight (mode wait) or aborts them (mode abort)', async () => {
    const w = await worker();
    const reqs = [{ prompt: 'a red circle', seed: 9, steps: 8 }];
    const expected = await gen(w, reqs);
    const running = gen(w, reqs);
    const r = await sleep(w, { level: 1, mode: 'wait' });
    expect(r.drained).toBe(1);
    expectSameRollout(await running, expected);
    await wake(w);
    const doomed = gen(w, reqs);
    const settled = doomed.then(() => 'finished', (e: Error) => e.message);
    expect((await sleep(w, { level: 1, mode: 'abort' })).drained).toBe(1);
    expect(await settled).toMatch(/rollout aborted at step \d: .*aborted by sleep/);
    await wake(w);
    expectSameRollout(await gen(w, reqs), expected);
  });

  it('works across the worker thread: sleep, wake, same output', async () => {
    const w = await createWorker({ loadFormat: 'dummy', loadOptions: A, threads: 1 });
    open.push(w);
    const before = await w.generate(REQUESTS);
    const r = (await w.executeMethod('sleep', { level: 2 })) as SleepResult;
    expect(r.released).toEqual(['sessions', 'weights']);
    await expect(w.generate(REQUESTS)).rejects.toThrow(/the worker is asleep/);
    await w.executeMethod('wakeUp');
    expectSameRollout(await w.generate(REQUESTS), before);
  });
  it("wakes a plugin's own tag: its sleep tap releases, its wakeUp tap restores", async () => {
    const events: string[] = [];
    const cache = definePlugin({
      name: 'my-cache',
      apply({ hooks, declare }) {
        declare.wakeTag('my_cache');
        hooks.sleep.tap('my-cache', (report) => { events.push(`release at level ${report.level}`); return { ...report, released: [...report.released, 'my_cache'] }; });
        hooks.wakeUp.tap('my-cache', (tags) => { if (tags.includes('my_cache')) events.push('restore'); });
      },
    });
    const w = await inlineWorker({ loadOptions: A }, { cache });
    open.push(w);
    const r = await sleep(w, { level: 1 });
    expect(r.released).toEqual(['my_cache', 'sessions']);
    await expect(wake(w, ['my_cach'])).rejects.toThrow(/unknown tag "my_cach" \(known: weights, sessions, my_cache, kv_cache\)/);
    expect((await wake(w, ['my_cache'])).restored).toEqual(['my_cache']);
    expect((await wake(w, ['sessions'])).awake).toBe(true);
    expect(events).toEqual(['release at level 1', 'restore']);
    const other = definePlugin({ name: 'other-cache', apply({ declare }) { declare.wakeTag('my_cache'); } });
    await expect(inlineWorker({ loadOptions: A }, { cache, other })).rejects.toThrow(/wakeUp tag 'my_cache' of plugin 'other-cache' clashes with 'my_cache' declared by plugin 'my-cache'/);
  });

  it('level 2 after loadWeights: wakeUp refuses to bring back the checkpoint in place of the update, unless asked', async () => {
    const w = await worker();
    const checkpointOut = await gen(w);
    const update = dummyWeights(2).transformer;
    expect(((await w.executeMethod('loadWeights', { source: asRecord(update) })) as { weightsVersion: number }).weightsVersion).toBe(1);
    const updatedOut = await gen(w);
    await sleep(w, { level: 2 });
    await expect(wake(w)).rejects.toThrow(/wakeUp: the weights of transformer dropped by the level-2 sleep came from loadWeights \(version 1\), not from the checkpoint.* Nothing was restored/);
    expect(await w.executeMethod('sleepState')).toMatchObject({ asleep: true, sessionsOpen: false, weightsMissing: [...COMPONENTS], weightsVersion: 1 });
    await expect(wake(w, { tags: ['weights'], checkpont: true })).rejects.toThrow(/wakeUp: unknown argument 'checkpont'/);
    // The trainer's way: its weights back by loadWeights; the untouched components from the checkpoint.
    await w.executeMethod('loadWeights', { source: asRecord(update) });
    expect(await wake(w)).toMatchObject({ restored: ['weights', 'sessions'], awake: true, fromCheckpoint: ['text_encoder', 'decoder'], weightsVersion: 3 });
    const back = await gen(w);
    expectSameRollout(back, updatedOut);
    expect(back.metaInfo.weights_version).toBe(3);
    // Asked for: the checkpoint again, under a new version, and the result says so.
    await sleep(w, { level: 2 });
    expect(await wake(w, { checkpoint: true })).toMatchObject({ awake: true, fromCheckpoint: [...COMPONENTS], weightsVersion: 4 });
    expectSameRollout(await gen(w), checkpointOut);
    // Now the checkpoint's own weights were dropped: a plain wake reloads them.
    await sleep(w, { level: 2 });
    expect(await wake(w)).toMatchObject({ awake: true, fromCheckpoint: [...COMPONENTS], weightsVersion: 5 });
  });

  it("keeps the worker asleep when a plugin's wakeUp tap throws, names it, and wakes once it succeeds", async () => {
    let failWake = true;
    let afterRan = 0;
    const flaky = definePlugin({
      name: 'flaky-cache',
      apply({ hooks, declare }) {
        declare.wakeTag('flaky_cache');
        hooks.wakeUp.tapPromise('flaky-cache', async () => { if (failWake) throw new Error('cache server down'); });
      },
    });
    const after = definePlugin({ name: 'after', apply({ hooks }) { hooks.wakeUp.tap('after', () => { afterRan++; }); } });
    const w = await inlineWorker({ loadOptions: A }, { flaky, after });
    open.push(w);
    const before = await gen(w);
    await sleep(w, { level: 1 });
    await expect(wake(w)).rejects.toThrow("wakeUp: plugin 'flaky-cache' failed to restore flaky_cache: cache server down. Restored: sessions; the worker stays asleep");
    expect(afterRan).toBe(1); // the taps after it still ran
    expect(await state(w)).toBe('sleeping');
    expect(await w.executeMethod('sleepState')).toMatchObject({ asleep: true, sessionsOpen: true, wakeFailures: { 'flaky-cache': 'cache server down' } });
    await expect(gen(w)).rejects.toThrow(/the worker is asleep: plugin 'flaky-cache' failed to wake \(cache server down; wakeUp\(\{ tags: \["flaky_cache"\] \}\) again\)/);
    failWake = false;
    expect(await wake(w, ['sessions'])).toMatchObject({ restored: [], awake: false }); // its tag was not asked: still failed
    expect(await wake(w, ['flaky_cache'])).toMatchObject({ restored: ['flaky_cache'], awake: true });
    expect(await state(w)).toBe('ready');
    expectSameRollout(await gen(w), before);
    // Failing while awake also takes the worker out of service, visibly.
    failWake = true;
    await expect(wake(w, ['flaky_cache'])).rejects.toThrow(/plugin 'flaky-cache' failed to restore flaky_cache/);
    expect(await state(w)).toBe('sleeping');
  });
});
