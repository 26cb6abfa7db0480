import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RolloutData } from '../core/protocol.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import { fromFloat32, toFloat32 } from '../core/tensors/dtype-convert.ts';
import { f32, tensor, type HostTensor } from '../core/tensors/tensor.ts';
import { createWorker } from '../index.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectDifferentRollout, expectSameRollout, REQUESTS, sameBytes } from './support/weights.ts';

const A = { ...SMALL_DUMMY, seed: 1 };
const B = { ...SMALL_DUMMY, seed: 2 };
const wB = dummyWeights(2);
const COMPONENTS = ['text_encoder', 'transformer', 'decoder'] as const;

describe('loadWeights', () => {
  let a: WorkerWrapperBase;
  let b: WorkerWrapperBase;
  let dir: string;
  const gen = (w: WorkerWrapperBase, reqs: unknown[] = REQUESTS) => w.executeMethod('generate', reqs) as Promise<RolloutData>;
  const load = (w: WorkerWrapperBase, ...args: unknown[]) => w.executeMethod('loadWeights', ...args) as Promise<{ weightsVersion: number; tensors: number; staged: boolean; stagedTensors: number }>;

  beforeAll(async () => {
    [a, b] = await Promise.all([inlineWorker({ loadOptions: A }), inlineWorker({ loadOptions: B })]);
    dir = await mkdtemp(join(tmpdir(), 'omni-ws-'));
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('turns a worker started with model A into model B, bit for bit, in buckets committed at once', async () => {
    const w = await inlineWorker({ loadOptions: A });
    try {
      const before = await gen(w);
      const fromB = await gen(b);
      expectDifferentRollout(before, fromB);
      const path = join(dir, 'te.safetensors');
      await writeFile(path, serializeSafetensors(wB.text_encoder));
      // Three buckets, three source kinds: a path, bytes, named tensors.
      expect(await load(w, { component: 'text_encoder', source: path }, { bucket: true })).toMatchObject({ staged: true, weightsVersion: 0 });
      expect(await load(w, { component: 'transformer', source: serializeSafetensors(wB.transformer), bucket: true })).toMatchObject({ staged: true, weightsVersion: 0 });
      const third = await load(w, { component: 'decoder', source: asRecord(wB.decoder), bucket: true });
      expect(third.stagedTensors).toBe(wB.text_encoder.size + wB.transformer.size + wB.decoder.size);
      // Nothing is served from a staged bucket before the commit.
      expectSameRollout(await gen(w), before);
      const done = (await w.executeMethod('finishWeightUpdate')) as { weightsVersion: number; tensors: number };
      expect(done).toMatchObject({ weightsVersion: 1, tensors: third.stagedTensors });
      const after = await gen(w);
      expectSameRollout(after, fromB);
      expect(after.metaInfo.weights_version).toBe(1);
      expect(await w.executeMethod('finishWeightUpdate')).toMatchObject({ weightsVersion: 1, tensors: 0 }); // nothing staged: no-op
    } finally {
      await w.close();
    }
  });

  it('commits an unbucketed call at once, one version per call, and keeps the other tensors', async () => {
    const w = await inlineWorker({ loadOptions: A });
    try {
      const old = w.worker.weights.get('transformer')!;
      const r = await load(w, { source: { 'proj_out.weight': wB.transformer.get('proj_out.weight')! } });
      expect(r).toMatchObject({ weightsVersion: 1, tensors: 1, staged: false });
      const now = w.worker.weights.get('transformer')!;
      expect(now).not.toBe(old); // a new map: the old one is never mutated
      expect(sameBytes(now.get('proj_out.weight')!, wB.transformer.get('proj_out.weight')!)).toBe(true);
      for (const [n, t] of old) if (n !== 'proj_out.weight') expect(now.get(n)).toBe(t);
      expect([...now.keys()]).toEqual([...old.keys()]);
      for (const c of COMPONENTS) await load(w, { component: c, source: asRecord(wB[c]) });
      expect(w.worker.weights.version).toBe(4);
      expectSameRollout(await gen(w), await gen(b));
    } finally {
      await w.close();
    }
  });

  it('converts F16 and BF16 to the model dtype, rounding as PyTorch does', async () => {
    const w = await inlineWorker({ loadOptions: A });
    const ref = await inlineWorker({ loadOptions: A });
    try {
      for (const dtype of ['F16', 'BF16'] as const) {
        const narrow: Record<string, HostTensor> = {};
        const widened: Record<string, HostTensor> = {};
        for (const [n, t] of wB.transformer) {
          narrow[n] = tensor(dtype, t.shape, fromFloat32(t.data as Float32Array, dtype));
          widened[n] = f32(t.shape, toFloat32(narrow[n]));
        }
        await load(w, { source: serializeSafetensors(narrow) });
        await load(ref, { source: widened });
        const got = w.worker.weights.get('transformer')!.get('blocks.0.attn.to_q.weight')!;
        expect(got.dtype).toBe('F32');
        expect(sameBytes(got, widened['blocks.0.attn.to_q.weight'])).toBe(true);
        expectSameRollout(await gen(w), await gen(ref));
      }
    } finally {
      await Promise.all([w.close(), ref.close()]);
    }
  });

  it('copies caller memory: changing the sent arrays afterwards changes nothing', async () => {
    const w = await inlineWorker({ loadOptions: A });
    try {
      const sent = asRecord(wB.transformer);
      const mine = Object.fromEntries(Object.entries(sent).map(([n, t]) => [n, f32(t.shape, (t.data as Float32Array).slice())]));
      await load(w, { source: mine });
      const before = await gen(w);
      for (const t of Object.values(mine)) (t.data as Float32Array).fill(0);
      expectSameRollout(await gen(w), before);
    } finally {
      await w.close();
    }
  });

  it('refuses bad updates with an error naming the problem, applies nothing, and keeps serving', async () => {
    const before = await gen(a);
    const good = wB.transformer.get('proj_out.weight')!;
    const bytes = serializeSafetensors({ 'proj_out.weight': good });
    const truncatedPath = join(dir, 'truncated.safetensors');
    await writeFile(truncatedPath, bytes.subarray(0, bytes.length - 7));
    // Checked for NaN and infinity while the file is read: the last element of the second tensor.
    const withInf = new Float32Array(wB.transformer.get('proj_in.weight')!.data as Float32Array);
    withInf[withInf.length - 1] = -Infinity;
    const infPath = join(dir, 'inf.safetensors');
    await writeFile(infPath, serializeSafetensors({ 'proj_out.weight': good, 'proj_in.weight': { dtype: 'F32', shape: [32, 4], data: withInf } }));
    const badHeader = bytes.slice();
    badHeader[8] = 0x7b + 1; // the JSON header no longer starts with '{'
    const cases: [unknown, RegExp][] = [
      [{ source: { 'proj_out.weight': good, 'nope.weight': good } }, /unknown parameter 'nope\.weight' for component transformer/],
      [{ source: { 'transformer.proj_out.weight': good } }, /did you mean 'proj_out\.weight'/],
      [{ source: { 'proj_out.weight': f32([1, 2, 3]) } }, /'proj_out\.weight' has shape \[1,2,3\], the model's is \[4,32\]/],
      [{ source: { 'proj_out.weight': tensor('I64', good.shape) } }, /'proj_out\.weight' is I64; only F32, F16, BF16, F64 convert/],
      [{ source: { 'proj_out.weight': { dtype: 'F32', shape: [4, 32], data: new Float32Array(5) } } }, /needs 128 elements, data has 5/],
      [{ source: { 'proj_out.weight': { dtype: 'F8', shape: [1], data: new Uint8Array(1) } } }, /unknown dtype "F8"/],
      [{ source: bytes.subarray(0, bytes.length - 7) }, /safetensors bytes .*past the end of the data buffer/],
      [{ source: badHeader }, /header is not valid JSON/],
      [{ source: truncatedPath }, /cannot read .*truncated\.safetensors.*past the end/],
      [{ source: infPath }, /file .*inf\.safetensors\): nothing applied: 'proj_in\.weight' holds -Infinity at \[31, 3\]/],
      [{ source: join(dir, 'missing.safetensors') }, /cannot read .*missing\.safetensors.*ENOENT/],
      [{ source: join(dir, 'weights.bin') }, /not a \.safetensors file/],
      [{ source: {} }, /holds no tensors/],
      [{ source: 42 }, /source must be a \.safetensors path/],
      [{ component: 'vae', source: { 'proj_out.weight': good } }, /unknown component "vae"/],
      [null, /loadWeights needs \{ component\?, source, bucket\? \}/],
      [{ source: { 'proj_out.weight': good }, buckt: true }, /^loadWeights: unknown argument 'buckt' \(did you mean 'bucket'\?\); it takes component, source, bucket, upload; nothing applied$/],
      [{ componnet: 'transformer', source: { 'proj_out.weight': good } }, /unknown argument 'componnet' \(did you mean 'component'\?\)/],
    ];
    for (const [args, message] of cases) {
      await expect(load(a, args), String(message)).rejects.toThrow(message);
    }
    await expect(load(a, { source: { 'proj_out.weight': good, 'nope.weight': good } })).rejects.toThrow(/nothing applied/);
    expect(a.worker.weights.version).toBe(0);
    expectSameRollout(await gen(a), before);
  });

  it('keeps staged buckets through a bad one, until finishWeightUpdate or abortWeightUpdate', async () => {
    const w = await inlineWorker({ loadOptions: A });
    try {
      const before = await gen(w);
      await load(w, { source: asRecord(wB.transformer), bucket: true });
      await expect(load(w, { source: { bad: f32([1]) }, bucket: true })).rejects.toThrow(/unknown parameter 'bad'/);
      expect(await w.executeMethod('abortWeightUpdate')).toEqual({ dropped: wB.transformer.size, weightsVersion: 0 });
      expect(await w.executeMethod('finishWeightUpdate')).toMatchObject({ weightsVersion: 0, tensors: 0 });
      expectSameRollout(await gen(w), before);
      for (const c of COMPONENTS) await load(w, { component: c, source: asRecord(wB[c]), bucket: true });
      await expect(load(w, { source: { 'proj_out.weight': f32([2, 2]) }, bucket: true })).rejects.toThrow(/shape/);
      await w.executeMethod('finishWeightUpdate');
      expectSameRollout(await gen(w), await gen(b));
    } finally {
      await w.close();
    }
  });

  it('stages an upload apart from the buckets: aborted, committed alone, or added to the buckets', async () => {
    const w = await inlineWorker({ loadOptions: A });
    try {
      const before = await gen(w);
      const names = [...wB.transformer.keys()];
      const piece = (from: number, to: number) => Object.fromEntries(names.slice(from, to).map((n) => [n, wB.transformer.get(n)!]));
      const half = Math.ceil(names.length / 2);
      await load(w, { source: asRecord(wB.decoder), component: 'decoder', bucket: true });
      // Two pieces of upload u1, then dropped: the bucket stays, nothing is served from u1.
      expect(await load(w, { source: piece(0, half), upload: 'u1' })).toMatchObject({ staged: true, weightsVersion: 0, stagedTensors: wB.decoder.size });
      await load(w, { source: piece(half, names.length), upload: 'u1' });
      expect(await w.executeMethod('abortWeightUpdate', { upload: 'u1' })).toEqual({ dropped: names.length, weightsVersion: 0 });
      expectSameRollout(await gen(w), before);
      // Upload u2 committed alone: one version, the decoder bucket still staged.
      await load(w, { source: piece(0, half), upload: 'u2' });
      await load(w, { source: piece(half, names.length), upload: 'u2' });
      expect(await w.executeMethod('finishWeightUpdate', { upload: 'u2' })).toMatchObject({ weightsVersion: 1, tensors: names.length, stagedTensors: wB.decoder.size });
      // Upload u3 (the text encoder) added to the buckets: the next finish commits both.
      await load(w, { component: 'text_encoder', source: asRecord(wB.text_encoder), upload: 'u3' });
      expect(await w.executeMethod('finishWeightUpdate', { upload: 'u3', bucket: true })).toMatchObject({ weightsVersion: 1, tensors: wB.text_encoder.size, stagedTensors: wB.decoder.size + wB.text_encoder.size });
      expect(await w.executeMethod('finishWeightUpdate')).toMatchObject({ weightsVersion: 2, tensors: wB.decoder.size + wB.text_encoder.size });
      expectSameRollout(await gen(w), await gen(b));
      await expect(load(w, { source: piece(0, 1), upload: 'u4', bucket: true })).rejects.toThrow(/upload is staged whole/);
      await expect(w.executeMethod('finishWeightUpdate', { uplod: 'u4' })).rejects.toThrow(/unknown argument 'uplod' \(did you mean 'upload'\?\)/);
      await expect(w.executeMethod('abortWeightUpdate', { upload: 7 })).rejects.toThrow(/upload must be a non-empty string, not 7/);
    } finally {
      await w.close();
    }
  });

  it('clears the prompt cache when the text encoder changes, not when the transformer does', async () => {
    const w = await inlineWorker({ loadOptions: A });
    try {
      await gen(w);
      await load(w, { source: asRecord(wB.transformer) });
      expect(await w.executeMethod('resetPromptCache')).toBeGreaterThan(0); // still cached; now emptied
      await gen(w);
      await load(w, { component: 'text_encoder', source: asRecord(wB.text_encoder) });
      expect(await w.executeMethod('resetPromptCache')).toBe(0);
    } finally {
      await w.close();
    }
  });

  it('lets a rollout in flight finish with the weights and version it started with', async () => {
    const w = await inlineWorker({ loadOptions: A });
    try {
      const reqs = [{ prompt: 'a red circle', seed: 5, steps: 6 }];
      const expected = await gen(w, reqs);
      const running = gen(w, reqs);
      await load(w, { source: asRecord(wB.transformer) }); // commits while the rollout runs
      const r = await running;
      expect(r.metaInfo.weights_version).toBe(0);
      expectSameRollout(r, expected);
      expect((await gen(w, reqs)).metaInfo.weights_version).toBe(1);
    } finally {
      await w.close();
    }
  });

  it('takes named typed arrays across the worker thread (createWorker)', async () => {
    const w = await createWorker({ loadFormat: 'dummy', loadOptions: A, threads: 1 });
    const ref = await createWorker({ loadFormat: 'dummy', loadOptions: B, threads: 1 });
    try {
      for (const c of COMPONENTS) await w.executeMethod('loadWeights', { component: c, source: asRecord(wB[c]), bucket: true });
      expect(await w.executeMethod('finishWeightUpdate')).toMatchObject({ weightsVersion: 1 });
      const [x, y] = [await w.generate(REQUESTS), await ref.generate(REQUESTS)];
      expectSameRollout(x, y);
      // Bytes in a SharedArrayBuffer cross without a clone, and are still copied: the caller's to reuse.
      const bytes = serializeSafetensors(dummyWeights(1).transformer);
      const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
      shared.set(bytes);
      await w.executeMethod('loadWeights', { source: shared });
      const mixed = await w.generate(REQUESTS);
      shared.fill(0, 200);
      expectSameRollout(await w.generate(REQUESTS), mixed);
      expectDifferentRollout(mixed, y);
      // Moved instead of copied: the caller's buffer is detached, the worker gets the weights whole.
      const moved = serializeSafetensors(dummyWeights(2).transformer);
      await w.executeMethodTransfer('loadWeights', [{ source: moved }], [moved.buffer as ArrayBuffer]);
      expect(moved.byteLength).toBe(0);
      expectSameRollout(await w.generate(REQUESTS), y);
    } finally {
      await Promise.all([w.close(), ref.close()]);
    }
  });
});
