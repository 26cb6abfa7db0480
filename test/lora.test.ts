import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RolloutData } from '../core/protocol.ts';
import type { WeightMap } from '../core/model/weights.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { parseSafetensors, serializeSafetensors } from '../core/tensors/safetensors.ts';
import { toFloat32 } from '../core/tensors/dtype-convert.ts';
import { f32, numel, type HostTensor } from '../core/tensors/tensor.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectSameRollout, sameBytes } from './support/weights.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/lora/', import.meta.url));
const A = { ...SMALL_DUMMY, seed: 1 };
const REQ = { prompt: 'a red circle', seeds: [4, 5] };

interface Fixture { config: { r: number; lora_alpha: number; use_rslora?: boolean }; tensors: Record<string, HostTensor>; bytes: Uint8Array }
async function fixture(name: string): Promise<Fixture> {
  const bytes = await readFile(join(FIXTURES, name, 'adapter_model.safetensors'));
  const file = parseSafetensors(bytes);
  return {
    config: JSON.parse(await readFile(join(FIXTURES, name, 'adapter_config.json'), 'utf8')),
    tensors: Object.fromEntries(file.names.map((n) => [n, file.get(n)])),
    bytes,
  };
}

/** The merge written out independently: D = B A in float64, then W + s * (alpha / r) * D, rounded once. */
function mergedByHand(base: WeightMap, fx: Fixture, s: number): Record<string, HostTensor> {
  const { r, lora_alpha: alpha, use_rslora } = fx.config;
  const coef = s * (use_rslora ? alpha / Math.sqrt(r) : alpha / r);
  const out = asRecord(base);
  for (const key of Object.keys(fx.tensors).filter((k) => k.endsWith('.lora_A.weight'))) {
    const module = key.slice('base_model.model.'.length, -'.lora_A.weight'.length);
    const Am = toFloat32(fx.tensors[key]);
    const Bm = toFloat32(fx.tensors[key.replace('lora_A', 'lora_B')]);
    const W = base.get(`${module}.weight`)!;
    const [O, I] = W.shape;
    const D = new Float64Array(O * I);
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) {
      let sum = 0;
      for (let k = 0; k < r; k++) sum += Bm[o * r + k] * Am[k * I + i];
      D[o * I + i] = sum;
    }
    const Wd = W.data as Float32Array;
    out[`${module}.weight`] = f32(W.shape, Float32Array.from(Wd, (w, j) => w + coef * D[j]));
  }
  return out;
}

describe('lora', () => {
  let w: WorkerWrapperBase;
  let ref: WorkerWrapperBase;
  let attn: Fixture;
  let ff: Fixture;
  const base = dummyWeights(1).transformer;
  const gen = (x: WorkerWrapperBase, reqs: unknown[]) => x.executeMethod('generate', reqs) as Promise<RolloutData>;
  /** The reference: a plain worker whose transformer weights are the hand-merged ones. */
  async function reference(weights: Record<string, HostTensor>, reqs: unknown[] = [REQ]): Promise<RolloutData> {
    await ref.executeMethod('loadWeights', { source: weights });
    // The reference worker has no lora plugin: the merge is in its weights, not in the request.
    return gen(ref, reqs.map((r) => {
      const { lora: _, ...rest } = r as Record<string, unknown>;
      return rest;
    }));
  }

  beforeAll(async () => {
    w = await inlineWorker({ loadOptions: A, plugins: ['dummy-loader', 'weight-sync', 'sleep-mode', { name: 'lora', options: { roots: [FIXTURES] } }] });
    ref = await inlineWorker({ loadOptions: A, plugins: ['dummy-loader', 'weight-sync'] });
    [attn, ff] = await Promise.all([fixture('attn-r4'), fixture('ff-rslora-bf16')]);
    await w.executeMethod('addLora', { name: 'attn', path: 'attn-r4' });
    await w.executeMethod('addLora', { name: 'ff', path: join(FIXTURES, 'ff-rslora-bf16') });
  });
  afterAll(async () => { await Promise.all([w.close(), ref.close()]); });

  it('gives the output of W + s (alpha / r) B A, bit for bit, for each scale', async () => {
    for (const s of [1, 0.7, -0.5]) {
      const got = await gen(w, [{ ...REQ, lora: { name: 'attn', scale: s } }]);
      expectSameRollout(got, await reference(mergedByHand(base, attn, s)));
      expect(got.metaInfo.lora).toEqual({ name: 'attn', scale: s });
    }
  });

  it('scales by alpha / sqrt(r) with rsLoRA, from BF16 tensors', async () => {
    const got = await gen(w, [{ ...REQ, lora: { name: 'ff', scale: 1.5 } }]);
    expectSameRollout(got, await reference(mergedByHand(base, ff, 1.5)));
  });

  it('gives each request of one call its own adapter\'s output', async () => {
    const reqs = [
      { prompt: 'a red circle', seeds: [1, 2], lora: { name: 'attn', scale: 1 } },
      { prompt: 'a red circle', seeds: [3] },
      { prompt: 'a blue square', seeds: [4], lora: 'ff' },
      { prompt: 'a red circle', seeds: [5], lora: { name: 'attn', scale: 0.5 } },
    ];
    const mixed = await gen(w, reqs);
    const row = (r: RolloutData, b: number) => {
      const t = r.batch.latents_clean;
      const n = numel(t!.shape.slice(1));
      return f32(t!.shape.slice(1), (t!.data as Float32Array).slice(b * n, (b + 1) * n));
    };
    const expected = [
      await reference(mergedByHand(base, attn, 1), [reqs[0]]),
      await reference(asRecord(base), [reqs[1]]),
      await reference(mergedByHand(base, ff, 1), [reqs[2]]),
      await reference(mergedByHand(base, attn, 0.5), [reqs[3]]),
    ];
    const rows = [[0, 0], [0, 1], [1, 0], [2, 0], [3, 0]];
    rows.forEach(([req, b], i) => expect(sameBytes(row(mixed, i), row(expected[req], b)), `row ${i}`).toBe(true));
    // Meta that differs between batches becomes per-sample data (null: the base weights).
    expect(mixed.nonTensorBatch.lora).toStrictEqual([{ name: 'attn', scale: 1 }, { name: 'attn', scale: 1 }, null, { name: 'ff', scale: 1 }, { name: 'attn', scale: 0.5 }]);
  });

  it('runs the base weights at scale 0 and without the option', async () => {
    const plain = await reference(asRecord(base));
    expectSameRollout(await gen(w, [{ ...REQ, lora: { name: 'attn', scale: 0 } }]), plain);
    expectSameRollout(await gen(w, [REQ]), plain);
  });

  it('refuses a misspelt addLora argument and a removeLora/pinLora argument that is not a name, changing nothing', async () => {
    const before = await w.executeMethod('listLoras');
    await expect(w.executeMethod('addLora', { name: 'typo', config: attn.config, tensors: attn.tensors, pinn: true } as never)).rejects
      .toThrow(/^addLora: unknown argument 'pinn' \(did you mean 'pinned'\?\); it takes name, path, config, tensors, pinned, replace, mergeScales; nothing applied$/);
    await expect(w.executeMethod('removeLora', { name: 'attn' } as never)).rejects.toThrow(/^removeLora: takes the adapter's name \(a non-empty string\), got \{"name":"attn"\}$/);
    await expect(w.executeMethod('pinLora', { nam: 'attn' } as never)).rejects.toThrow(/^pinLora: takes the adapter's name/);
    expect(await w.executeMethod('listLoras')).toEqual(before);
  });

  it('loads from memory (named tensors or safetensors bytes) with a config: the trainer\'s case', async () => {
    const expected = await gen(w, [{ ...REQ, lora: 'attn' }]);
    await w.executeMethod('addLora', { name: 'mem', config: attn.config, tensors: attn.tensors });
    await w.executeMethod('addLora', { name: 'bytes', config: attn.config, tensors: attn.bytes });
    expectSameRollout(await gen(w, [{ ...REQ, lora: 'mem' }]), expected);
    expectSameRollout(await gen(w, [{ ...REQ, lora: 'bytes' }]), expected);
    await expect(w.executeMethod('addLora', { name: 'mem', config: ff.config, tensors: ff.tensors })).rejects.toThrow(/'mem' is loaded; removeLora it first or pass replace: true/);
    await w.executeMethod('addLora', { name: 'mem', config: ff.config, tensors: ff.tensors, replace: true });
    expectSameRollout(await gen(w, [{ ...REQ, lora: 'mem' }]), await gen(w, [{ ...REQ, lora: 'ff' }]));
    expect(await w.executeMethod('removeLora', 'mem')).not.toContain('mem');
    await w.executeMethod('removeLora', 'bytes');
    await expect(gen(w, [{ ...REQ, lora: 'mem' }])).rejects.toThrow(/request 0: lora: no adapter named 'mem' is loaded \(loaded: attn, ff;/);
    await expect(w.executeMethod('removeLora', 'mem')).rejects.toThrow(/removeLora: no adapter named 'mem'/);
  });

  it('re-merges after the base weights change, and after a level-2 sleep', async () => {
    const x = await inlineWorker({ loadOptions: A, plugins: ['dummy-loader', 'weight-sync', 'sleep-mode', { name: 'lora', options: { roots: [FIXTURES] } }] });
    try {
      await x.executeMethod('addLora', { name: 'attn', path: 'attn-r4' });
      const before = await gen(x, [{ ...REQ, lora: 'attn' }]);
      expect(((await x.executeMethod('listLoras')) as { adapters: { mergedScales: number[] }[] }).adapters[0].mergedScales).toEqual([1]);
      const sleep = (await x.executeMethod('sleep', { level: 2 })) as { released: string[] };
      expect(sleep.released).toEqual(['lora merged weights', 'sessions', 'weights']);
      await x.executeMethod('wakeUp');
      expectSameRollout(await gen(x, [{ ...REQ, lora: 'attn' }]), before);
      const other = dummyWeights(2).transformer;
      await x.executeMethod('loadWeights', { source: asRecord(other) });
      expect(((await x.executeMethod('listLoras')) as { mergedBytes: number }).mergedBytes).toBe(0);
      expectSameRollout(await gen(x, [{ ...REQ, lora: 'attn' }]), await reference(mergedByHand(other, attn, 1)));
    } finally {
      await x.close();
    }
  });

  it('refuses a bad request option before anything runs', async () => {
    let batches = 0;
    const count = () => { batches++; };
    w.events.on('batchDone', count);
    await expect(gen(w, [REQ, { ...REQ, lora: { name: 'attn', scale: 'big' } }])).rejects.toThrow(/request 1: lora must be \{ name: string, scale\?: finite number \}/);
    await expect(gen(w, [{ ...REQ, lora: { name: 'attn', scale: NaN } }])).rejects.toThrow(/request 0: lora must be .*, got \{"name":"attn","scale":NaN\}$/);
    await expect(gen(w, [REQ, { ...REQ, lora: { name: 'nope' } }])).rejects.toThrow(/no adapter named 'nope'/);
    await expect(gen(w, [{ ...REQ, lora: { name: 'attn', rank: 2 } }])).rejects.toThrow(/request 0: lora must be/);
    expect(batches).toBe(0);
    w.events.off('batchDone', count);
  });
});

describe('lora byte budget', () => {
  const open: WorkerWrapperBase[] = [];
  afterEach(async () => { await Promise.all(open.splice(0).map((x) => x.close())); });
  let attn: Fixture;
  beforeAll(async () => { attn = await fixture('attn-r4'); });
  const ADAPTER_BYTES = 4 * (2 * (4 * 32 + 32 * 4) + 2 * (4 * 16 + 32 * 4)); // attn-r4's A and B as float32
  async function budgeted(budgetBytes: number): Promise<WorkerWrapperBase> {
    const x = await inlineWorker({ loadOptions: A, plugins: ['dummy-loader', { name: 'lora', options: { budgetBytes } }] });
    open.push(x);
    return x;
  }
  const add = (x: WorkerWrapperBase, name: string, pinned = false) =>
    x.executeMethod('addLora', { name, config: attn.config, tensors: attn.tensors, pinned }) as Promise<{ bytes: number; evicted: string[] }>;
  const names = async (x: WorkerWrapperBase) => ((await x.executeMethod('listLoras')) as { adapters: { name: string }[] }).adapters.map((a) => a.name).sort();

  it('evicts the least recently used unpinned adapter, never a pinned one', async () => {
    const x = await budgeted(3 * ADAPTER_BYTES);
    expect((await add(x, 'a')).bytes).toBe(ADAPTER_BYTES);
    await add(x, 'b');
    await add(x, 'c');
    await x.executeMethod('generate', [{ ...REQ, lora: 'a' }]); // a is now more recent than b
    expect((await add(x, 'd')).evicted).toEqual(['b']);
    expect(await names(x)).toEqual(['a', 'c', 'd']);
    await x.executeMethod('pinLora', 'c');
    expect((await add(x, 'e')).evicted).toEqual(['a']);
    expect((await add(x, 'f')).evicted).toEqual(['d']);
    expect(await names(x)).toEqual(['c', 'e', 'f']);
    await expect(x.executeMethod('generate', [{ ...REQ, lora: 'a' }])).rejects.toThrow(/no adapter named 'a' is loaded .*evicted under the byte budget/);
  });

  it('refuses an adapter that cannot fit beside the pinned ones, with a clear error', async () => {
    const x = await budgeted(2 * ADAPTER_BYTES);
    await add(x, 'a', true);
    await add(x, 'b', true);
    await expect(add(x, 'c')).rejects.toThrow(/adapter 'c' \(0\.00 MiB\) does not fit the LoRA budget of 0\.01 MiB beside the pinned adapters \(0\.01 MiB\); unpin some or raise the lora plugin's budgetBytes/);
    expect(await names(x)).toEqual(['a', 'b']);
    await x.executeMethod('unpinLora', 'a');
    expect((await add(x, 'c')).evicted).toEqual(['a']);
    const tiny = await budgeted(ADAPTER_BYTES - 1);
    await expect(add(tiny, 'a')).rejects.toThrow(/does not fit the LoRA budget/);
    await expect(x.executeMethod('pinLora', 'zzz')).rejects.toThrow(/pinLora: no adapter named 'zzz'/);
  });

  it('caches merged weights within the budget and drops them first', async () => {
    const merged = 4 * 32 * 32 + 4 * 32 * 16 * 2 + 4 * 32 * 32; // to_q, to_k, to_v, to_out as float32
    const x = await budgeted(2 * ADAPTER_BYTES + merged - 1);
    await x.executeMethod('addLora', { name: 'lazy', config: attn.config, tensors: attn.tensors, mergeScales: [] });
    expect(await x.executeMethod('listLoras')).toMatchObject({ mergedBytes: 0 });
    await x.executeMethod('removeLora', 'lazy');
    await expect(x.executeMethod('addLora', { name: 'bad', config: attn.config, tensors: attn.tensors, mergeScales: [Infinity] })).rejects.toThrow(/mergeScales must be an array of numbers within \+-10/);
    await add(x, 'a'); // merged at scale 1 when added: the first request is a lookup
    let list = (await x.executeMethod('listLoras')) as { usedBytes: number; mergedBytes: number };
    expect(list).toMatchObject({ mergedBytes: merged, usedBytes: ADAPTER_BYTES + merged });
    await x.executeMethod('generate', [{ ...REQ, lora: 'a' }]);
    list = (await x.executeMethod('listLoras')) as { usedBytes: number; mergedBytes: number };
    expect(list).toMatchObject({ mergedBytes: merged, usedBytes: ADAPTER_BYTES + merged });
    await add(x, 'b'); // needs room: the merged map goes, not an adapter
    list = (await x.executeMethod('listLoras')) as { usedBytes: number; mergedBytes: number };
    expect(list).toMatchObject({ mergedBytes: 0, usedBytes: 2 * ADAPTER_BYTES });
    expect(await names(x)).toEqual(['a', 'b']);
  });
});

describe('lora path allowlist and PEFT features', () => {
  let root: string;
  let outside: string;
  let x: WorkerWrapperBase;
  beforeAll(async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'omni-lora-'));
    root = join(tmp, 'root');
    outside = join(tmp, 'outside');
    await mkdir(root);
    await cp(join(FIXTURES, 'attn-r4'), join(root, 'good'), { recursive: true });
    await cp(join(FIXTURES, 'attn-r4'), join(outside, 'secret'), { recursive: true });
    await symlink(join(outside, 'secret'), join(root, 'escape'));
    await symlink(join(root, 'good'), join(root, 'alias'));
    await mkdir(join(root, 'file-escape'));
    await cp(join(FIXTURES, 'attn-r4', 'adapter_config.json'), join(root, 'file-escape', 'adapter_config.json'));
    await symlink(join(outside, 'secret', 'adapter_model.safetensors'), join(root, 'file-escape', 'adapter_model.safetensors'));
    x = await inlineWorker({ loadOptions: A, plugins: ['dummy-loader', { name: 'lora', options: { roots: [root, FIXTURES] } }] });
  });
  afterAll(async () => {
    await x.close();
    await rm(join(root, '..'), { recursive: true, force: true });
  });
  const add = (args: Record<string, unknown>) => x.executeMethod('addLora', { name: `n${Math.random()}`, ...args });

  it('loads from inside the roots (relative, absolute, symlinks that stay inside)', async () => {
    await expect(add({ path: 'good' })).resolves.toMatchObject({ rank: 4, modules: expect.arrayContaining(['blocks.0.attn.to_q']) });
    await expect(add({ path: join(root, 'good') })).resolves.toMatchObject({ rank: 4 });
    await expect(add({ path: 'alias' })).resolves.toMatchObject({ rank: 4 });
  });

  it('rejects .., absolute paths outside, and symlinks leading out', async () => {
    const before = ((await x.executeMethod('listLoras')) as { adapters: unknown[] }).adapters.length;
    await expect(add({ path: '../outside/secret' })).rejects.toThrow("addLora: '..' is not allowed in paths ('../outside/secret')");
    await expect(add({ path: `${root}/good/../../outside/secret` })).rejects.toThrow(/'\.\.' is not allowed/);
    await expect(add({ path: join(outside, 'secret') })).rejects.toThrow(/is outside the allowed roots/);
    await expect(add({ path: 'escape' })).rejects.toThrow(/^addLora: 'escape' leads outside the allowed roots \(.*\) through a symlink \(it resolves to .*outside\/secret\)$/);
    await expect(add({ path: 'file-escape' })).rejects.toThrow(/adapter_model\.safetensors' leads outside the allowed roots through a symlink/);
    await expect(add({ path: 'missing' })).rejects.toThrow(/^addLora: no folder 'missing' under the allowed roots/);
    await expect(add({ path: 'good/adapter_config.json' })).rejects.toThrow(/is not a folder/);
    expect(((await x.executeMethod('listLoras')) as { adapters: unknown[] }).adapters.length).toBe(before);
    const noRoots = await inlineWorker({ loadOptions: A, plugins: ['dummy-loader', 'lora'] });
    await expect(noRoots.executeMethod('addLora', { name: 'a', path: join(root, 'good') })).rejects.toThrow(/loading adapters from paths is off; list allowed folders in the lora plugin's `roots` option/);
    await noRoots.close();
  });

  it('refuses unsupported PEFT features and adapters for another model by name', async () => {
    const { config, tensors } = await fixture('attn-r4');
    const key = 'base_model.model.blocks.0.attn.to_q.lora_A.weight';
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ path: 'dora' }, /DoRA \(use_dora: true\) is not supported/],
      [{ config: { ...config, modules_to_save: ['proj_out'] }, tensors }, /modules_to_save \(\["proj_out"\]\) is not supported/],
      [{ config: { ...config, bias: 'all' }, tensors }, /bias "all" \(trained biases\) is not supported/],
      [{ config: { ...config, fan_in_fan_out: true }, tensors }, /fan_in_fan_out/],
      [{ config: { ...config, rank_pattern: { to_q: 8 } }, tensors }, /rank_pattern is not supported/],
      [{ config: { ...config, target_modules: 'all-linear' }, tensors }, /'all-linear'/],
      [{ config: { ...config, target_modules: 'to_q(' }, tensors }, /not a valid regular expression/],
      [{ config: { ...config, peft_type: 'IA3' }, tensors }, /peft_type "IA3" is not supported/],
      [{ config: { ...config, target_modules: ['to_q', 'q_proj'] }, tensors }, /the model has no module matching target_modules 'q_proj' \(transformer Linear modules: proj_in, /],
      [{ config: { ...config, target_modules: ['to_q'] }, tensors }, /tensors for module 'blocks\.0\.attn\.to_k', which target_modules does not cover/],
      [{ config: { ...config, r: 8 }, tensors }, /blocks\.0\.attn\.to_\w+\.lora_A is \[4,\d+\], expected \[r=8, in=\d+\]/],
      [{ config: { ...config, r: undefined }, tensors }, /invalid adapter_config: r: /],
      [{ config, tensors: { ...tensors, 'base_model.model.blocks.0.attn.to_q.lora_magnitude_vector': tensors[key] } }, /unexpected tensor '.*lora_magnitude_vector'/],
      [{ config, tensors: { [key]: tensors[key] } }, /module 'blocks\.0\.attn\.to_q' has lora_A but no lora_B/],
      [{ config, tensors: { ...tensors, 'base_model.model.blocks.9.attn.to_q.lora_A.weight': tensors[key] } }, /tensors for module 'blocks\.9\.attn\.to_q', which the transformer lacks/],
      [{ config: { ...config, target_modules: ['to_q', 'to_k', 'to_v', 'to_out', 'fc1'] }, tensors }, /target_modules covers blocks\.0\.ff\.fc1 but the adapter has no lora_A \/ lora_B for it/],
      [{ config, tensors: serializeSafetensors(tensors).subarray(0, 100) }, /addLora: safetensors bytes: safetensors: /],
      [{ tensors }, /in-memory tensors need a config object/],
      [{ config, tensors: { [key]: { dtype: 'F32', shape: [4, 4], data: new Float32Array(3) } } }, /addLora: tensor '.*lora_A\.weight': shape \[4,4\] needs 16 elements, data has 3/],
      [{ path: 'good', config }, /with a path, the config is the folder's adapter_config\.json/],
      [{ path: 'good', tensors }, /give exactly one of path or tensors/],
    ];
    for (const [args, message] of cases) await expect(add(args), String(message)).rejects.toThrow(message);
    await writeFile(join(root, 'good', 'adapter_config.json'), '{ nope');
    await expect(add({ path: 'good' })).rejects.toThrow(/adapter_config\.json is not valid JSON/);
    // The worker keeps serving.
    await expect(x.executeMethod('generate', [REQ])).resolves.toBeTruthy();
  });
});
