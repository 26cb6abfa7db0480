// The weight lifecycle on the embedded model (models/shapes-dit): real learned weights, a model
// folder checkpoint to reload from, LoRA on its DiT blocks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RolloutData } from '../core/protocol.ts';
import type { WeightMap } from '../core/model/weights.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { readSafetensorsFile, writeSafetensorsFile } from '../core/tensors/safetensors.ts';
import { fromFloat32, toFloat32 } from '../core/tensors/dtype-convert.ts';
import { f32, tensor, type HostTensor } from '../core/tensors/tensor.ts';
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';
import { EMBEDDED_MODEL_DIR } from '../index.ts';
import { inlineWorker } from './support/inline-worker.ts';
import { asRecord, expectDifferentRollout, expectSameRollout } from './support/weights.ts';

const present = existsSync(join(EMBEDDED_MODEL_DIR, 'model.json'));
const REQS = [{ prompt: 'a red circle at the top left', seeds: [1, 2], steps: 3 }, { prompt: 'a blue square', seeds: [3], steps: 3 }];

describe.skipIf(!present)('weight lifecycle on shapes-dit', () => {
  let w: WorkerWrapperBase;
  let ref: WorkerWrapperBase;
  let dir: string;
  let base: WeightMap;
  const config = { loadFormat: 'onnx', model: EMBEDDED_MODEL_DIR, threads: 2 };
  const gen = (x: WorkerWrapperBase) => x.executeMethod('generate', REQS) as Promise<RolloutData>;

  beforeAll(async () => {
    w = await inlineWorker(config);
    ref = await inlineWorker({ ...config, plugins: ['weight-sync'] });
    dir = await mkdtemp(join(tmpdir(), 'omni-dit-'));
    const file = await readSafetensorsFile(join(EMBEDDED_MODEL_DIR, 'transformer.safetensors'));
    base = new Map(file.names.map((n) => [n, file.get(n)]));
  });
  afterAll(async () => {
    await Promise.all([w.close(), ref.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('wakes from level 2 by reloading the model folder, bit for bit', async () => {
    const before = await gen(w);
    const r = (await w.executeMethod('sleep', { level: 2 })) as { accountedBytes: number; host: { arrayBuffers: number } };
    expect(r.accountedBytes).toBeGreaterThan(18e6);
    expect(r.host.arrayBuffers).toBeGreaterThanOrEqual(0.95 * r.accountedBytes);
    await w.executeMethod('wakeUp');
    expectSameRollout(await gen(w), before);
  });

  it('loads a BF16 checkpoint from a path into the float32 model', async () => {
    const narrow: Record<string, HostTensor> = {};
    const widened: Record<string, HostTensor> = {};
    for (const [n, t] of base) {
      narrow[n] = tensor('BF16', t.shape, fromFloat32(t.data as Float32Array, 'BF16'));
      widened[n] = f32(t.shape, toFloat32(narrow[n]));
    }
    const path = join(dir, 'bf16.safetensors');
    await writeSafetensorsFile(path, narrow);
    const before = await gen(w);
    const r = (await w.executeMethod('loadWeights', { source: path })) as { tensors: number; weightsVersion: number };
    expect(r.tensors).toBe(base.size);
    await ref.executeMethod('loadWeights', { source: widened });
    const after = await gen(w);
    expectSameRollout(after, await gen(ref));
    expectDifferentRollout(after, before);
    await w.executeMethod('loadWeights', { source: asRecord(base) });
    expectSameRollout(await gen(w), before);
  });

  it('merges a LoRA on the DiT blocks as W + s (alpha / sqrt(r)) B A, and refuses non-Linear targets', async () => {
    const r = 8;
    const modules = ['qkv', 'proj'].flatMap((m) => Array.from({ length: 6 }, (_, b) => `blocks.${b}.${m}`));
    const tensors: Record<string, HostTensor> = {};
    const expected = asRecord(base);
    modules.forEach((m, j) => {
      const [O, I] = base.get(`${m}.weight`)!.shape;
      const A = new Float32Array(r * I);
      const B = new Float32Array(O * r);
      fillGaussian(7, 2 * j, A);
      fillGaussian(7, 2 * j + 1, B);
      for (let i = 0; i < B.length; i++) B[i] *= 0.01;
      tensors[`base_model.model.${m}.lora_A.weight`] = f32([r, I], A);
      tensors[`base_model.model.${m}.lora_B.weight`] = f32([O, r], B);
      const W = base.get(`${m}.weight`)!.data as Float32Array;
      const coef = 0.8 * (16 / Math.sqrt(r));
      expected[`${m}.weight`] = f32([O, I], W.map((x, at) => {
        const o = Math.floor(at / I), i = at % I;
        let s = 0;
        for (let k = 0; k < r; k++) s += B[o * r + k] * A[k * I + i];
        return x + coef * s;
      }));
    });
    const config = { r, lora_alpha: 16, use_rslora: true, target_modules: ['qkv', 'proj'] };
    await w.executeMethod('addLora', { name: 'dit', config, tensors });
    await ref.executeMethod('loadWeights', { source: expected });
    const got = (await w.executeMethod('generate', REQS.map((q) => ({ ...q, lora: { name: 'dit', scale: 0.8 } })))) as RolloutData;
    expectSameRollout(got, await gen(ref));
    await expect(w.executeMethod('addLora', { name: 'bad', config: { ...config, target_modules: ['qkv', 'patch_embed'] }, tensors }))
      .rejects.toThrow(/target module 'patch_embed' is not a Linear layer/);
    await expect(w.executeMethod('addLora', { name: 'bad', config: { ...config, target_modules: ['context_norm'] }, tensors }))
      .rejects.toThrow(/target module 'context_norm' is not a Linear layer/);
  });
});
