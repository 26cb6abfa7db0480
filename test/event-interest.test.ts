// The inference thread posts only the events its caller listens to (core/executor/event-interest.ts):
// the shared flags follow the listeners exactly, and a thread worker's messages follow the flags.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { createWorker, type OmniWorker } from '../index.ts';
import { EventInterest, ListenedEvents } from '../core/executor/event-interest.ts';
import { ThreadExecutor } from '../core/executor/executor.ts';
import type { FromThread } from '../core/executor/protocol.ts';
import { WORKER_EVENT_NAMES, type WorkerEventName } from '../core/events.ts';
import { SMALL_DUMMY } from './support/inline-worker.ts';

type Op =
  | { op: 'on' | 'once'; name: WorkerEventName; fn: number }
  | { op: 'off'; name: WorkerEventName; fn: number }
  | { op: 'removeAll'; name?: WorkerEventName }
  | { op: 'emit'; name: WorkerEventName };

const name = fc.constantFrom(...WORKER_EVENT_NAMES);
const fn = fc.integer({ min: 0, max: 2 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('on' as const, 'once' as const), name, fn }),
  fc.record({ op: fc.constant('off' as const), name, fn }),
  fc.record({ op: fc.constant('removeAll' as const), name: fc.option(name, { nil: undefined }) }),
  fc.record({ op: fc.constant('emit' as const), name }),
);

describe('ListenedEvents and EventInterest', () => {
  it('the shared flag of each event is set exactly while it has a listener (on, once, off, removeAllListeners, a once firing)', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const interest = new EventInterest();
      const changes: string[] = [];
      const events = new ListenedEvents((n, listened) => {
        changes.push(`${n}:${listened}`);
        interest.set(n, listened);
      });
      const fns = [() => {}, () => {}, () => {}];
      for (const o of ops) {
        if (o.op === 'on') events.on(o.name, fns[o.fn]);
        else if (o.op === 'once') events.once(o.name, fns[o.fn]);
        else if (o.op === 'off') events.off(o.name, fns[o.fn]);
        else if (o.op === 'removeAll') events.removeAllListeners(o.name);
        else events.emit(o.name, {} as never);
        for (const n of WORKER_EVENT_NAMES) expect(interest.has(n)).toBe(events.listenerCount(n) > 0);
      }
      // Reported on changes only: each event's reports alternate, starting with true.
      for (const n of WORKER_EVENT_NAMES) {
        const mine = changes.filter((c) => c.startsWith(`${n}:`)).map((c) => c.endsWith('true'));
        mine.forEach((v, i) => expect(v).toBe(i % 2 === 0));
      }
    }), { numRuns: 300 });
  });
});

describe('a thread worker\'s event messages', () => {
  let worker: OmniWorker;
  const posted: string[] = [];
  beforeAll(async () => {
    const proto = ThreadExecutor.prototype as unknown as { onMessage(m: FromThread): void };
    const onMessage = proto.onMessage;
    vi.spyOn(proto, 'onMessage').mockImplementation(function (this: unknown, m: FromThread) {
      if (m.kind === 'event') posted.push(m.name);
      return onMessage.call(this, m);
    });
    worker = await createWorker({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1, defaults: { steps: 3 } });
  });
  afterAll(async () => {
    await worker?.close();
    vi.restoreAllMocks();
  });

  it('none while nobody listens; then exactly the listened events, each step of the call', async () => {
    posted.length = 0;
    await worker.generate([{ prompt: 'a red circle', seed: 1 }]);
    expect(posted).toEqual([]);

    const steps: number[] = [];
    const onStep = (s: { step: number }) => steps.push(s.step);
    worker.events.on('step', onStep);
    await worker.generate([{ prompt: 'a red circle', seed: 2 }]);
    expect(steps).toEqual([1, 2, 3]);
    expect(posted).toEqual(['step', 'step', 'step']);

    let done = 0;
    worker.events.once('requestDone', () => done++);
    worker.events.off('step', onStep);
    posted.length = 0;
    await worker.generate([{ prompt: 'a red circle', seed: 3 }]);
    await worker.generate([{ prompt: 'a red circle', seed: 4 }]);
    expect(done).toBe(1);
    expect(posted).toEqual(['requestDone']);
  });
});
