// POST /update_weights stages a body's tensors on the worker while the body still arrives (one
// piece per tensor here: weightGroupBytes 1), as an upload of its own: a body refused or cut off
// mid-stream drops the pieces already staged, leaves the old version serving and the trainer's
// buckets staged; a whole body commits as one version.
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createWorker, type OmniWorker } from '../index.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import { buildServer, type OmniServer } from '../server/app.ts';
import { SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectDifferentRollout, expectSameRollout } from './support/weights.ts';

const REQUEST = { prompt: 'a red circle', seed: 5, steps: 2 };

/** Sends `body` over a socket in pieces; `cut` stops after that many bytes and drops the connection. */
function send(url: string, body: Uint8Array, cut?: () => Promise<void>, at = body.length): Promise<{ status: number; body: string } | 'dropped'> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/update_weights`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', (e) => (cut ? resolve('dropped') : reject(e)));
    for (let i = 0; i < at; i += 997) req.write(body.subarray(i, Math.min(at, i + 997)));
    if (!cut) req.end();
    else void cut().then(() => req.destroy());
  });
}

describe('POST /update_weights staged while the body arrives', () => {
  let worker: OmniWorker;
  let server: OmniServer;
  let url: string;
  const other = asRecord(dummyWeights(1).transformer);
  const names = Object.keys(other);
  const body = (tensors: Record<string, HostTensor>) => serializeSafetensors(tensors);
  const post = (path: string, payload?: Uint8Array) => server.app.inject({ method: 'POST', url: path, ...(payload ? { headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from(payload) } : {}) });
  const rollout = async () => RolloutBatch.fromSafetensors(new Uint8Array((await server.app.inject({ method: 'POST', url: '/v1/rollouts', payload: [REQUEST] })).rawPayload));
  const version = async () => ((await worker.executeMethod('getState')) as { weightsVersion: number }).weightsVersion;
  /** The worker calls the route made, by method, with their first argument. */
  const calls = (method: string) => [...vi.mocked(worker.executeMethodTransfer).mock.calls, ...vi.mocked(worker.executeMethod).mock.calls.map(([m, ...a]) => [m, a])]
    .filter(([m]) => m === method).map(([, a]) => (a as unknown[])[0] as { upload?: string });

  beforeAll(async () => {
    worker = await createWorker({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, executor: 'inline', threads: 1 });
    server = await buildServer(worker, { coalesceMs: 0, port: 0, weightGroupBytes: 1 });
    url = await server.listen();
  });
  afterAll(async () => {
    await server.close();
    await worker.close();
  });
  afterEach(() => { vi.restoreAllMocks(); });
  const spy = () => {
    vi.spyOn(worker, 'executeMethodTransfer');
    vi.spyOn(worker, 'executeMethod');
  };

  it('refuses a NaN in the last tensor after the others were staged: old version serving, buckets kept', async () => {
    const before = await rollout();
    const v0 = await version();
    expect((await post('/update_weights?bucket=true', body({ [names[0]]: other[names[0]] }))).json()).toMatchObject({ staged: true, stagedTensors: 1 });
    spy();
    const last = names[names.length - 1];
    const nan = new Float32Array(other[last].data as Float32Array);
    nan[nan.length - 1] = Number.NaN;
    const refused = await post('/update_weights', body({ ...other, [last]: { ...other[last], data: nan } }));
    expect(refused.statusCode).toBe(422);
    expect(refused.json().error.message).toMatch(new RegExp(`'${last.replace(/\./g, '\\.')}' holds NaN`));
    // The earlier tensors went to the worker one by one, then the upload was dropped.
    const pieces = calls('loadWeights');
    expect(pieces.length).toBe(names.length);
    expect(new Set(pieces.map((p) => p.upload)).size).toBe(1);
    expect(calls('abortWeightUpdate')).toEqual([{ upload: pieces[0].upload }]);
    expect(await version()).toBe(v0);
    expectSameRollout(await rollout(), before);
    // Only the trainer's bucket is left to commit.
    expect((await post('/finish_weight_update')).json()).toMatchObject({ weightsVersion: v0 + 1, tensors: 1 });
  });

  it('answers a wrong shape mid-body over a socket while more bytes follow, and keeps serving', async () => {
    const v0 = await version();
    const wrong = { dtype: 'F32' as const, shape: [3], data: new Float32Array(3) };
    const mid = names[1];
    const answer = await send(url, body({ ...other, [mid]: wrong }));
    expect(answer).not.toBe('dropped');
    const { status, body: text } = answer as { status: number; body: string };
    expect([status, JSON.parse(text).error.message]).toEqual([422, expect.stringMatching(new RegExp(`'${mid.replace(/\./g, '\\.')}' has shape \\[3\\]`))]);
    expect(await version()).toBe(v0);
    const good = await send(url, body(other));
    expect(good).toMatchObject({ status: 200 });
    expect(JSON.parse((good as { body: string }).body)).toMatchObject({ weightsVersion: v0 + 1, tensors: names.length, staged: false });
  });

  it('drops the pieces of a body cut off mid-stream: the old version serves, nothing is left to commit', async () => {
    const seed2 = asRecord(dummyWeights(2).transformer);
    const before = await rollout();
    const v0 = await version();
    spy();
    const bytes = body(seed2);
    const cut = await send(url, bytes, () => vi.waitFor(() => expect(calls('loadWeights').length).toBeGreaterThan(0), { timeout: 20_000, interval: 5 }), Math.floor(bytes.length * 0.8));
    expect(cut).toBe('dropped');
    await vi.waitFor(() => expect(calls('abortWeightUpdate').length).toBe(1), { timeout: 20_000, interval: 10 });
    expect(calls('abortWeightUpdate')[0].upload).toBe(calls('loadWeights')[0].upload);
    expect(await version()).toBe(v0);
    expectSameRollout(await rollout(), before);
    expect((await post('/finish_weight_update')).json()).toMatchObject({ weightsVersion: v0, tensors: 0 });
    // The same body whole: one new version.
    expect((await post('/update_weights', bytes)).json()).toMatchObject({ weightsVersion: v0 + 1, tensors: names.length });
    expectDifferentRollout(await rollout(), before);
  });
});
