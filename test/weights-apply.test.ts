// How a fleet worker applies a weights version (fleet/weights-apply.ts), against a real worker and
// an object store whose chunks the test hands out one by one: tensors are staged while the object
// still arrives and committed only once it has arrived whole; an object that stalls or arrives
// corrupt fails the version by name, with nothing of it applied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '@nats-io/obj';
import { createWorker, type OmniWorker } from '../index.ts';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import { applyWeightsVersion } from '../fleet/weights-apply.ts';
import type { WeightsRecord } from '../fleet/records.ts';
import { SMALL_DUMMY } from './support/inline-worker.ts';
import { dummyWeights, expectDifferentRollout, expectSameRollout } from './support/weights.ts';

const CONFIG = { loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1, defaults: { steps: 2 }, executor: 'inline' as const };
const REQUEST = [{ prompt: 'a red circle', seeds: [1, 2] }];
const RECORD: WeightsRecord = { version: 5, committedAt: '', objects: [{ name: 'weights/v5/0-transformer.safetensors', component: 'transformer', tensors: 0, bytes: 0 }] };

/** An object store holding one object whose chunks the test releases (or fails) by hand. */
function handFedStore(bytes: Uint8Array) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const data = new ReadableStream<Uint8Array>({ start: (c) => { controller = c; } });
  let sent = 0;
  return {
    store: { get: async () => ({ info: { size: bytes.length }, data, error: Promise.resolve(null) }) } as unknown as Pick<ObjectStore, 'get'>,
    /** Releases the next `n` bytes (at most what is left). */
    feed(n: number) {
      controller.enqueue(bytes.slice(sent, sent + n));
      sent += n;
      if (sent >= bytes.length) controller.close();
    },
    fail: (e: Error) => controller.error(e),
  };
}

/** The worker, with its staging calls counted. */
function counting(w: OmniWorker) {
  const calls = { staged: 0 };
  const wrapped = { ...w, executeMethodTransfer: ((name: string, args: unknown[], t: ArrayBuffer[]) => {
    if (name === 'loadWeights') calls.staged++;
    return w.executeMethodTransfer(name as never, args as never, t);
  }) as OmniWorker['executeMethodTransfer'] };
  return { worker: wrapped as OmniWorker, calls };
}

const serially = (commit: () => Promise<void>) => commit();

describe('applyWeightsVersion', () => {
  let worker: OmniWorker;
  let reference: OmniWorker;
  const next = dummyWeights(11).transformer;
  const bytes = serializeSafetensors(next);

  beforeAll(async () => {
    [worker, reference] = await Promise.all([createWorker(CONFIG), createWorker(CONFIG)]);
  });
  afterAll(async () => {
    await Promise.all([worker?.close(), reference?.close()]);
  });

  it('stages tensors while the object still arrives, commits only once it has arrived whole, as loadWeights of the same file would', async () => {
    const before = await worker.generate(REQUEST);
    const { store, feed } = handFedStore(bytes);
    const { worker: w, calls } = counting(worker);
    const applied = applyWeightsVersion(store, w, RECORD, serially, { groupBytes: 1 });
    feed(Math.floor(bytes.length / 2));
    await expect.poll(() => calls.staged).toBeGreaterThan(0);
    expect((await worker.executeMethod('getState')).weightsVersion).toBe(0); // staged, not committed
    expectSameRollout(await worker.generate(REQUEST), before);
    feed(bytes.length); // the rest
    await applied;
    expect(calls.staged).toBe(next.size);
    expect((await worker.executeMethod('getState')).weightsVersion).toBe(1);
    await reference.executeMethod('loadWeights', { source: bytes });
    const after = await worker.generate(REQUEST);
    expectSameRollout(after, await reference.generate(REQUEST));
    expectDifferentRollout(after, before);
  });

  it('an object that stalls, or arrives corrupt, fails the version naming it; the tensors staged from it are dropped, nothing applied', async () => {
    const version = (await worker.executeMethod('getState')).weightsVersion;
    const before = await worker.generate(REQUEST);
    const other = serializeSafetensors(dummyWeights(12).transformer);
    for (const end of ['stall', 'corrupt'] as const) {
      const { store, feed, fail } = handFedStore(other);
      const { worker: w, calls } = counting(worker);
      const applied = applyWeightsVersion(store, w, RECORD, serially, { groupBytes: 1, stallMs: 300 });
      feed(other.length - 10);
      await expect.poll(() => calls.staged).toBeGreaterThan(0);
      if (end === 'corrupt') fail(new Error('received a corrupt object, digests do not match'));
      await expect(applied).rejects.toThrow(end === 'stall'
        ? 'weights object weights/v5/0-transformer.safetensors of version 5: no data for 300 ms (deleted by a newer version\'s commit?)'
        : 'weights object weights/v5/0-transformer.safetensors of version 5: received a corrupt object, digests do not match');
      expect(await worker.executeMethod('finishWeightUpdate')).toMatchObject({ tensors: 0, weightsVersion: version });
      expectSameRollout(await worker.generate(REQUEST), before);
    }
  });
});
