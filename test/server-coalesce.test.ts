// Coalescing: concurrent rollout calls share generate calls, each caller gets exactly what it
// would get alone, calls that cannot merge never cause a refusal, and the queue is bounded.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createWorker, type OmniWorker } from '../index.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import type { GenerateRequest } from '../core/protocol.ts';
import { buildServer, type OmniServer } from '../server/app.ts';
import { RolloutCoalescer } from '../server/coalescer.ts';
import { HttpError } from '../server/http-error.ts';
import { SMALL_DUMMY } from './support/inline-worker.ts';

const SDE = { type: 'sde' as const, noiseLevel: 0.7, window: { size: 2, range: [0, 3] as [number, number] } };
const LAYOUTS: Record<string, Partial<GenerateRequest>> = {
  plain: { steps: 2 },
  sde: { steps: 3, sde: SDE, capture: { latents: true, timesteps: true, logProbs: true } },
  noCfg: { steps: 2, guidanceScale: 1 },
};

describe('rollout coalescing through the server', () => {
  let worker: OmniWorker;
  let server: OmniServer;
  let calls = 0;
  beforeAll(async () => {
    worker = await createWorker({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, executor: 'inline', threads: 1, maxBatchSize: 8 });
    const generate = worker.generate;
    worker = { ...worker, generate: (r) => { calls++; return generate(r); } };
    server = await buildServer(worker, { coalesceMs: 20 });
  });
  afterAll(async () => {
    await server.close();
    await worker.close();
  });
  const post = (requests: unknown) => server.app.inject({ method: 'POST', url: '/v1/rollouts', payload: requests as object });

  it('gives each concurrent caller the bytes it gets alone, over random callers and layouts', async () => {
    const caller = fc.record({
      layout: fc.constantFrom(...Object.keys(LAYOUTS)),
      prompts: fc.array(fc.record({ prompt: fc.constantFrom('a red circle', 'a blue square', 'a green circle on the left'), n: fc.integer({ min: 1, max: 3 }), seed: fc.nat(1000) }), { minLength: 1, maxLength: 2 }),
    });
    await fc.assert(fc.asyncProperty(fc.array(caller, { minLength: 2, maxLength: 5 }), async (callers) => {
      const bodies = callers.map((c) => c.prompts.map((p) => ({ prompt: p.prompt, numOutputsPerPrompt: p.n, seed: p.seed, ...LAYOUTS[c.layout] })));
      const alone = [];
      for (const b of bodies) alone.push(await post(b));
      calls = 0;
      const together = await Promise.all(bodies.map(post));
      for (let i = 0; i < bodies.length; i++) {
        expect(together[i].statusCode).toBe(200);
        expect(Buffer.from(together[i].rawPayload).equals(Buffer.from(alone[i].rawPayload)), `caller ${i}`).toBe(true);
      }
      // Callers of one layout that fit one batch share a call.
      const layouts = new Set(callers.map((c) => c.layout));
      expect(calls).toBeLessThanOrEqual(bodies.length);
      if (layouts.size === 1 && bodies.flat().reduce((s, r) => s + r.numOutputsPerPrompt, 0) <= 8) expect(calls).toBe(1);
    }), { numRuns: 6 });
  });

  it('never hands one caller the refusal of another caller it was merged with', async () => {
    const good = [{ prompt: 'a red circle', seeds: [1, 2], steps: 2 }];
    const alone = await post(good);
    const [bad, ok] = await Promise.all([post([{ prompt: 'x', steps: 2, seeds: [-1] }]), post(good)]);
    expect([bad.statusCode, bad.json().error.field]).toEqual([422, 'seeds[0]']);
    expect(ok.statusCode).toBe(200);
    expect(Buffer.from(ok.rawPayload).equals(Buffer.from(alone.rawPayload))).toBe(true);
  });

  it('answers 429 with Retry-After over HTTP once the queue holds maxQueuedSamples', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let started = 0;
    const slow: OmniWorker = { ...worker, generate: async (r) => { started++; await gate; return worker.generate(r); } };
    const s = await buildServer(slow, { coalesceMs: 0, maxQueuedSamples: 2 });
    try {
      const send = (seeds: number[]) => s.app.inject({ method: 'POST', url: '/v1/rollouts', payload: [{ prompt: 'a red circle', seeds, steps: 2 }] });
      const running = send([1]);
      await vi.waitFor(() => expect(started).toBe(1)); // in flight, held at the gate
      const queued = send([2, 3]);
      await vi.waitFor(() => expect(s.coalescer.depth.samples).toBe(2));
      const refused = await send([4]);
      expect([refused.statusCode, refused.headers['retry-after'], refused.json().error.message]).toEqual([429, '1', expect.stringMatching(/queue is full \(2 samples waiting, at most 2\)/)]);
      release();
      expect([(await running).statusCode, (await queued).statusCode]).toEqual([200, 200]);
      expect((await s.app.inject('/metrics')).body).toContain('omni_worker_rollouts_total{outcome="429"} 1');
    } finally {
      release();
      await s.close();
    }
  });

  it('splits a merged rollout back into each caller\'s samples, seeds and meta', async () => {
    calls = 0;
    const [a, b] = await Promise.all([post([{ prompt: 'a red circle', seeds: [5, 6], steps: 2 }]), post([{ prompt: 'a blue square', seed: 9, steps: 2 }])]);
    expect(calls).toBe(1);
    const ra = RolloutBatch.fromSafetensors(new Uint8Array(a.rawPayload));
    const rb = RolloutBatch.fromSafetensors(new Uint8Array(b.rawPayload));
    expect([ra.nonTensorBatch.seed, rb.nonTensorBatch.seed]).toEqual([[5, 6], [9]]);
    expect([ra.nonTensorBatch.prompt, rb.nonTensorBatch.prompt]).toEqual([['a red circle', 'a red circle'], ['a blue square']]);
  });
});

describe('RolloutCoalescer', () => {
  /** A generate whose calls the test resolves by hand. */
  function manual() {
    const pending: { requests: GenerateRequest[]; resolve: (b: RolloutBatch) => void }[] = [];
    const generate = (requests: GenerateRequest[]) => new Promise<RolloutBatch>((resolve) => pending.push({ requests, resolve }));
    const answer = (i: number) => {
      const { requests, resolve } = pending[i];
      const seeds = requests.flatMap((r) => r.seeds as number[]);
      resolve(new RolloutBatch({ nonTensorBatch: { seed: seeds } }));
    };
    return { pending, generate, answer };
  }
  const req = (...seeds: number[]): GenerateRequest[] => [{ prompt: 'p', seeds }];

  it('queues while a call runs, then merges the queued calls into one', async () => {
    const m = manual();
    const c = new RolloutCoalescer(m.generate, { maxBatchSize: 16, windowMs: 0, maxQueuedSamples: 100 });
    const first = c.submit(req(1));
    const second = c.submit(req(2, 3));
    const third = c.submit(req(4));
    expect(m.pending.length).toBe(1);
    expect(c.depth).toEqual({ callers: 2, samples: 3 });
    m.answer(0);
    expect((await first).nonTensorBatch.seed).toEqual([1]);
    await new Promise((r) => setImmediate(r));
    expect(m.pending[1].requests).toEqual([...req(2, 3), ...req(4)]);
    m.answer(1);
    expect([(await second).nonTensorBatch.seed, (await third).nonTensorBatch.seed]).toEqual([[2, 3], [4]]);
  });

  it('waits while calls keep arriving (each within the window), up to five windows from the first', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const m = manual();
      const c = new RolloutCoalescer(m.generate, { maxBatchSize: 16, windowMs: 30, maxQueuedSamples: 100 });
      const calls = [c.submit(req(1))];
      for (const seed of [2, 3, 4, 5, 6, 7]) {
        vi.advanceTimersByTime(25); // each within the window of the one before
        calls.push(c.submit(req(seed)));
      }
      // 150 ms after the first call (five windows) the batch goes, although calls still arrive.
      expect(m.pending.map((p) => p.requests.length)).toEqual([6]);
      vi.advanceTimersByTime(30);
      expect(m.pending.length).toBe(1); // the seventh waits for the call in flight
      m.answer(0);
      await Promise.all(calls.slice(0, 6));
      await vi.waitFor(() => expect(m.pending.length).toBe(2));
      m.answer(1);
      expect((await calls[6]).nonTensorBatch.seed).toEqual([7]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers 429 with Retry-After when the queue is full, and drops callers that went away', async () => {
    const m = manual();
    const c = new RolloutCoalescer(m.generate, { maxBatchSize: 4, windowMs: 0, maxQueuedSamples: 3 });
    const running = c.submit(req(1));
    const ac = new AbortController();
    const gone = c.submit(req(2, 3), ac.signal);
    const full = await c.submit(req(4, 5)).catch((e: HttpError) => e);
    expect(full).toBeInstanceOf(HttpError);
    expect([(full as HttpError).status, (full as HttpError).headers['retry-after']]).toEqual([429, '1']);
    ac.abort();
    await expect(gone).rejects.toMatchObject({ status: 499 });
    expect(c.depth).toEqual({ callers: 0, samples: 0 });
    const later = c.submit(req(6));
    m.answer(0);
    await running;
    await new Promise((r) => setImmediate(r));
    expect(m.pending[1].requests).toEqual(req(6));
    m.answer(1);
    await later;
  });

  it('close refuses queued calls with 503 and waits for the call in flight', async () => {
    const m = manual();
    const c = new RolloutCoalescer(m.generate, { maxBatchSize: 4, windowMs: 0, maxQueuedSamples: 10 });
    const running = c.submit(req(1));
    const queued = c.submit(req(2));
    let closed = false;
    const closing = c.close('shutting down').then(() => { closed = true; });
    await expect(queued).rejects.toMatchObject({ status: 503 });
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    m.answer(0);
    expect((await running).nonTensorBatch.seed).toEqual([1]);
    await closing;
    await expect(c.submit(req(3))).rejects.toMatchObject({ status: 503 });
  });
});
