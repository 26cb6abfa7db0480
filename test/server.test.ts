// The HTTP routes through fastify's inject(): answers equal the worker's own, every bad request a
// 4xx naming its field, the worker serving after each refusal.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorker, type OmniWorker } from '../index.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { serializeSafetensors, writeSafetensorsFile } from '../core/tensors/safetensors.ts';
import { scoreArgsFromRollout } from '../plugins/sde-scheduler/score-args.ts';
import { buildServer, type OmniServer } from '../server/app.ts';
import { detachTensors } from '../server/tensor-codec.ts';
import { SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectDifferentRollout, expectSameRollout } from './support/weights.ts';

const SDE_GROUP = {
  prompt: 'a red circle', numOutputsPerPrompt: 3, seed: 2, steps: 4,
  sde: { type: 'sde' as const, noiseLevel: 0.7, window: { size: 2, range: [0, 3] as [number, number] } },
  capture: { latents: true, timesteps: true, logProbs: true },
};

describe('omni-worker serve routes', () => {
  let worker: OmniWorker;
  let server: OmniServer;
  let dir: string;
  const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    server.app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload: payload as string }) });
  const rollout = async (requests: unknown[]) => {
    const r = await post('/v1/rollouts', requests);
    expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
    return RolloutBatch.fromSafetensors(new Uint8Array(r.rawPayload));
  };
  const version = async () => ((await worker.executeMethod('getState')) as { weightsVersion: number }).weightsVersion;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omni-serve-'));
    worker = await createWorker({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, executor: 'inline', threads: 1 });
    server = await buildServer(worker, { coalesceMs: 0, weightRoots: [dir] });
  });
  afterAll(async () => {
    await server.close();
    await worker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a rollout with the bytes RolloutBatch.save writes, and ?format=json with the same values', async () => {
    const direct = await worker.generate([SDE_GROUP]);
    const r = await post('/v1/rollouts', [SDE_GROUP]);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(Buffer.from(r.rawPayload).equals(Buffer.from(direct.toSafetensors()))).toBe(true);
    const j = await post('/v1/rollouts?format=json', [SDE_GROUP]);
    const body = j.json() as { batch: Record<string, { dtype: string; shape: number[]; data: number[] }>; non_tensor_batch: unknown; meta_info: unknown };
    expect(body.batch.rollout_log_probs.data).toEqual(Array.from(direct.batch.rollout_log_probs!.data as Float32Array));
    expect(body.batch.responses.shape).toEqual(direct.batch.responses!.shape);
    expect(body.non_tensor_batch).toEqual(direct.nonTensorBatch);
    expect(body.meta_info).toEqual(direct.metaInfo);
  });

  it('refuses malformed rollout bodies with 4xx naming the field, and keeps serving', async () => {
    const cases: [unknown, number, string][] = [
      [{ prompt: 'x' }, 400, 'body'],
      [[], 400, 'body'],
      [[{ seed: 1 }], 400, 'body[0]'],
      [[{ prompt: 'ok' }, { prompt: 7 }], 400, 'body[1].prompt'],
    ];
    for (const [payload, status, field] of cases) {
      const r = await post('/v1/rollouts', payload);
      expect([r.statusCode, r.json().error.field], JSON.stringify(payload)).toEqual([status, field]);
    }
    const worker422 = await post('/v1/rollouts', [{ prompt: 'ok' }, { prompt: 'x', sde: { type: 'sdx' } }]);
    expect(worker422.statusCode).toBe(422);
    expect(worker422.json().error).toMatchObject({ request: 1, field: 'sde.type', message: expect.stringMatching(/request 1: invalid sde option: sde.type/) });
    expect((await post('/v1/rollouts?format=xml', [{ prompt: 'x' }])).json().error.field).toBe('querystring.format');
    expect((await post('/v1/rollouts', '{"prompt": ', { 'content-type': 'application/json' })).statusCode).toBe(400);
    expect((await rollout([{ prompt: 'still serving', steps: 2 }])).length).toBe(1);
  });

  it('sleeps, refuses rollouts with 503 while asleep, and wakes to identical samples', async () => {
    const before = await rollout([SDE_GROUP]);
    expect((await post('/sleep?level=3')).json().error.field).toBe('querystring.level');
    expect((await post('/sleep?level=1')).json()).toMatchObject({ level: 1, released: ['sessions'] });
    expect((await server.app.inject('/is_sleeping')).json()).toMatchObject({ is_sleeping: true, level: 1 });
    const refused = await post('/v1/rollouts', [SDE_GROUP]);
    expect([refused.statusCode, refused.json().error.message]).toEqual([503, expect.stringMatching(/asleep/)]);
    expect((await post('/wake_up?tags=kv_cache')).json()).toMatchObject({ awake: true });
    expect((await server.app.inject('/is_sleeping')).json().is_sleeping).toBe(false);
    expectSameRollout(await rollout([SDE_GROUP]), before);
  });

  it('takes streamed weights (bucketed or whole), refuses broken bodies whole, and reads files under weightRoots only', async () => {
    const base = await rollout([SDE_GROUP]);
    const v0 = await version();
    const other = asRecord(dummyWeights(1).transformer);
    const names = Object.keys(other);
    const bytes = (names_: string[], from = other) => Buffer.from(serializeSafetensors(Object.fromEntries(names_.map((n) => [n, from[n]]))));
    const octet = { 'content-type': 'application/octet-stream' };
    // Two buckets, then finish: one version bump.
    const half = Math.ceil(names.length / 2);
    expect((await post('/update_weights?bucket=true', bytes(names.slice(0, half)), octet)).json()).toMatchObject({ staged: true, weightsVersion: v0 });
    expect((await post('/update_weights?bucket=true', bytes(names.slice(half)), octet)).json()).toMatchObject({ staged: true, stagedTensors: names.length });
    expect((await post('/finish_weight_update')).json()).toMatchObject({ weightsVersion: v0 + 1, tensors: names.length });
    const changed = await rollout([SDE_GROUP]);
    expectDifferentRollout(changed, base);

    // A truncated body, a missing tensor name and a wrong content type change nothing.
    const good = bytes(names);
    const truncated = await post('/update_weights', good.subarray(0, good.length - 5), { ...octet, 'content-length': String(good.length - 5) });
    expect([truncated.statusCode, truncated.json().error.field]).toEqual([400, 'body']);
    const unknown = await post('/update_weights', Buffer.from(serializeSafetensors({ 'nope.weight': other[names[0]] })), octet);
    expect([unknown.statusCode, unknown.json().error.message]).toEqual([422, expect.stringMatching(/nope\.weight/)]);
    expect((await post('/update_weights', { a: 1 })).statusCode).toBe(415);
    expect(await version()).toBe(v0 + 1);

    // The serving weights back from a file: the first samples again.
    const file = join(dir, 'seed0.safetensors');
    await writeSafetensorsFile(file, asRecord(dummyWeights(0).transformer));
    expect((await post('/update_weights_from_path', { path: file })).json()).toMatchObject({ weightsVersion: v0 + 2 });
    expectSameRollout(await rollout([SDE_GROUP]), base);
    const outside = await post('/update_weights_from_path', { path: '/etc/passwd.safetensors' });
    expect([outside.statusCode, outside.json().error.field]).toEqual([403, 'path']);
    expect((await post('/update_weights_from_path', { path: '/etc/passwd' })).json().error).toMatchObject({ field: 'path', message: expect.stringMatching(/not a \.safetensors file/) });
    expect((await post('/abort_weight_update')).json()).toMatchObject({ dropped: 0 });
  });

  it('loads an adapter from memory, serves it by name, lists and unloads it', async () => {
    const { readFile } = await import('node:fs/promises');
    const fx = join(import.meta.dirname, 'fixtures/lora/attn-r4');
    const config = await readFile(join(fx, 'adapter_config.json'), 'utf8');
    const { parseSafetensors } = await import('../core/tensors/safetensors.ts');
    const file = parseSafetensors(await readFile(join(fx, 'adapter_model.safetensors')));
    const body = Buffer.from(serializeSafetensors(Object.fromEntries(file.names.map((n) => [n, file.get(n)])), { adapter_config: config }));
    const octet = { 'content-type': 'application/octet-stream' };
    expect((await post('/v1/load_lora_adapter', body, octet)).json().error.field).toBe('lora_name');
    const noConfig = await post('/v1/load_lora_adapter?lora_name=a', Buffer.from(serializeSafetensors({ x: file.get(file.names[0]) })), octet);
    expect(noConfig.json().error.message).toMatch(/adapter_config/);
    const loaded = await post('/v1/load_lora_adapter?lora_name=ema', body, octet);
    expect(loaded.statusCode, loaded.body).toBe(200);
    expect((await server.app.inject('/v1/lora_adapters')).json().adapters.map((a: { name: string }) => a.name)).toContain('ema');
    const req = { prompt: 'a red circle', seeds: [4], steps: 2 };
    expectDifferentRollout(await rollout([{ ...req, lora: 'ema' }]), await rollout([req]));
    expect((await post('/v1/load_lora_adapter', { lora_name: 'x', lora_path: 'nowhere' })).statusCode).toBe(422);
    expect((await post('/v1/load_lora_adapter', { lora_name: 'x', lora_pth: 'a' })).json().error.field).toBe('lora_pth');
    expect((await post('/v1/unload_lora_adapter', { lora_name: 'ema' })).json()).toEqual({ adapters: [] });
  });

  it('collective_rpc: JSON calls, tensors as safetensors both ways (computeLogProbs gives ratio 1), generate and unknown names refused', async () => {
    expect((await post('/collective_rpc', { method: 'listMethods' })).json().results[0]).toContain('computeLogProbs');
    const r = await rollout([SDE_GROUP]);
    const { json, tensors } = detachTensors([scoreArgsFromRollout(r)]);
    const body = Buffer.from(serializeSafetensors(tensors, { rpc: JSON.stringify({ method: 'computeLogProbs', args: json }) }));
    const scored = await post('/collective_rpc', body, { 'content-type': 'application/octet-stream' });
    expect(scored.headers['content-type']).toBe('application/octet-stream');
    const { parseSafetensors } = await import('../core/tensors/safetensors.ts');
    const file = parseSafetensors(new Uint8Array(scored.rawPayload));
    const [result] = JSON.parse(file.metadata.results);
    const logProbs = file.get(result.logProbs.__tensor__);
    expect(Buffer.from(logProbs.data.buffer, logProbs.data.byteOffset, logProbs.data.byteLength)
      .equals(Buffer.from(r.batch.rollout_log_probs!.data.buffer, r.batch.rollout_log_probs!.data.byteOffset, r.batch.rollout_log_probs!.data.byteLength))).toBe(true);
    expect((await post('/collective_rpc', { method: 'generate', args: [[{ prompt: 'x' }]] })).json().error).toMatchObject({ field: 'method', message: expect.stringMatching(/POST \/v1\/rollouts/) });
    expect((await post('/collective_rpc', { method: 'nope' })).statusCode).toBe(404);
    expect((await post('/collective_rpc', { method: 'getState', arg: [] })).json().error.field).toBe('arg');
    const path = await post('/collective_rpc', { method: 'loadWeights', args: [{ source: '/etc/x.safetensors' }] });
    expect([path.statusCode, path.json().error.field]).toEqual([403, 'args[0].source']);
  });

  it('serves OpenAI-shaped image generations as base64 PNGs of the rollout', async () => {
    const { decode } = await import('fast-png');
    const r = await post('/v1/images/generations', { prompt: 'a red circle', n: 2, seed: 3, steps: 2 });
    const data = r.json().data as { b64_json: string; seed: number }[];
    expect(data.map((d) => d.seed)).toEqual([3, 4]);
    const direct = await worker.generate([{ prompt: 'a red circle', numOutputsPerPrompt: 2, seed: 3, steps: 2 }]);
    const png = decode(Buffer.from(data[1].b64_json, 'base64'));
    const [, , H, W] = direct.batch.responses!.shape;
    expect([png.width, png.height]).toEqual([W, H]);
    const plane = H * W;
    const src = direct.batch.responses!.data as Uint8Array;
    expect(Array.from(png.data.subarray(0, 3))).toEqual([src[3 * plane], src[3 * plane + plane], src[3 * plane + 2 * plane]]);
    expect((await post('/v1/images/generations', { prompt: 'x', response_format: 'url' })).json().error.field).toBe('body.response_format');
  });

  it('reports health and Prometheus metrics; unknown routes are 404 naming the url', async () => {
    expect((await server.app.inject('/health')).json()).toMatchObject({ status: 'ok' });
    const m = await server.app.inject('/metrics');
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
    for (const name of ['omni_worker_rollouts_total{outcome="ok"}', 'omni_worker_samples_total', 'omni_worker_step_seconds_bucket', 'omni_worker_queue_samples', 'omni_worker_weights_version 2', 'omni_worker_sleeping 0']) {
      expect(m.body).toContain(name);
    }
    expect((await server.app.inject('/nope')).json().error).toMatchObject({ field: 'url' });
  });
});

describe('omni-worker serve safety', () => {
  it('refuses a non-loopback bind without a token, and asks callers for the bearer token', async () => {
    const worker = await createWorker({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, executor: 'inline', threads: 1 });
    try {
      await expect(buildServer(worker, { host: '0.0.0.0' })).rejects.toThrow(/binding 0\.0\.0\.0 \(not loopback\) needs --token/);
      const s = await buildServer(worker, { host: '0.0.0.0', token: 'secret-token' });
      expect((await s.app.inject('/health')).statusCode).toBe(200);
      const denied = await s.app.inject({ method: 'POST', url: '/v1/rollouts', payload: [{ prompt: 'x' }] });
      expect([denied.statusCode, denied.json().error.field]).toEqual([401, 'authorization']);
      expect((await s.app.inject({ url: '/is_sleeping', headers: { authorization: 'Bearer wrong-token' } })).statusCode).toBe(401);
      expect((await s.app.inject({ url: '/is_sleeping', headers: { authorization: 'Bearer secret-token' } })).statusCode).toBe(200);
      await s.close();
    } finally {
      await worker.close();
    }
  });

  it('bounds bodies per route and JSON rollouts by size, naming what to do instead', async () => {
    const worker = await createWorker({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, executor: 'inline', threads: 1 });
    try {
      const s = await buildServer(worker, { bodyLimits: { json: 200, weights: 64 }, maxJsonRolloutBytes: 100 });
      const big = await s.app.inject({ method: 'POST', url: '/v1/rollouts', payload: [{ prompt: 'x'.repeat(300) }] });
      expect([big.statusCode, big.json().error.field]).toEqual([413, 'body']);
      const json = await s.app.inject({ method: 'POST', url: '/v1/rollouts?format=json', payload: [{ prompt: 'x', steps: 1 }] });
      expect([json.statusCode, json.json().error.field, json.json().error.message]).toEqual([413, 'format', expect.stringMatching(/ask for safetensors/)]);
      const weights = await s.app.inject({ method: 'POST', url: '/update_weights', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(65) });
      expect([weights.statusCode, weights.json().error.message]).toEqual([413, expect.stringMatching(/65 bytes, over this route's limit of 64/)]);
      await s.close();
    } finally {
      await worker.close();
    }
  });
});
