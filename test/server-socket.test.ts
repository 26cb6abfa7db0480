// Over a real socket: a caller that disconnects mid-rollout leaves the worker serving, a weights
// body arrives in pieces, and SIGTERM finishes the rollout in flight before exiting 0.
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import { startServe, type ServeProcess } from './support/serve-process.ts';
import { asRecord, dummyWeights } from './support/weights.ts';

// Long enough (many steps) that a disconnect or SIGTERM lands mid-rollout.
const LONG = [{ prompt: 'a red circle', numOutputsPerPrompt: 8, seed: 1, steps: 1000 }];

/** Denoising steps the server has seen (its step-latency histogram's count). */
async function stepsDone(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^omni_worker_step_seconds_count (\d+)/m.exec(text)?.[1] ?? 0);
}

const postJson = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

describe('omni-worker serve over a socket', () => {
  let dir: string;
  let serve: ServeProcess;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omni-sock-'));
    serve = await startServe(dir);
  });
  afterAll(async () => {
    await serve?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps serving after a client disconnects mid-rollout', async () => {
    const ac = new AbortController();
    const gone = postJson(`${serve.url}/v1/rollouts`, LONG, ac.signal).catch((e: Error) => e.name);
    // Disconnect once the rollout's steps have started.
    await vi.waitFor(async () => expect(await stepsDone(serve.url)).toBeGreaterThan(0), { timeout: 30_000, interval: 20 });
    ac.abort();
    expect(await gone).toBe('AbortError');
    const r = await postJson(`${serve.url}/v1/rollouts?format=json`, [{ prompt: 'a blue square', seed: 2, steps: 2 }]);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { non_tensor_batch: { seed: number[] } }).non_tensor_batch.seed).toEqual([2]);
    expect((await fetch(`${serve.url}/health`)).status).toBe(200);
  });

  it('takes a weights body sent in small pieces', async () => {
    const body = Buffer.from(serializeSafetensors(asRecord(dummyWeights(0).transformer)));
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${serve.url}/update_weights`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      for (let at = 0; at < body.length; at += 777) req.write(body.subarray(at, at + 777));
      req.end();
    });
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ staged: false, tensors: Object.keys(asRecord(dummyWeights(0).transformer)).length });
  });

  it('on SIGTERM finishes the rollout in flight, refuses new work, and exits 0', async () => {
    const own = await startServe(dir);
    const inFlight = postJson(`${own.url}/v1/rollouts?format=json`, LONG);
    await vi.waitFor(async () => expect(await stepsDone(own.url)).toBeGreaterThan(0), { timeout: 30_000, interval: 20 });
    const code = own.stop();
    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(((await r.json()) as { non_tensor_batch: { seed: number[] } }).non_tensor_batch.seed).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await code).toBe(0);
    expect(own.output()).toMatch(/SIGTERM: finishing the work in flight[\s\S]*stopped/);
    await expect(fetch(`${own.url}/health`)).rejects.toThrow();
  });
});
