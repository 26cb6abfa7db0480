import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import { DTYPE_ARRAY, DTYPE_BYTES, tensorBytes, type DType, type HostTensor } from '../core/tensors/tensor.ts';

const dir = mkdtempSync(join(tmpdir(), 'rollout-batch-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (shape: number[], values: number[]): HostTensor => ({ dtype: 'F32', shape, data: Float32Array.from(values) });
const i64 = (values: bigint[]): HostTensor => ({ dtype: 'I64', shape: [values.length], data: BigInt64Array.from(values) });

/** 4 samples: a [4,2] float tensor, an I64 id, prompts, and meta info. */
function sample(): RolloutBatch {
  return new RolloutBatch({
    batch: { x: f32([4, 2], [0, 1, 10, 11, 20, 21, 30, 31]), id: i64([0n, 1n, 2n, 3n]) },
    nonTensorBatch: { prompt: ['a', 'b', 'c', 'd'] },
    metaInfo: { step: 7, tags: ['t'] },
  });
}

const rowsOf = (b: RolloutBatch) => Array.from(b.batch.id.data as BigInt64Array, Number);
const xOf = (b: RolloutBatch) => Array.from(b.batch.x.data as Float32Array);

describe('RolloutBatch construction', () => {
  it('takes its length from the shared first dimension', () => {
    expect(sample().length).toBe(4);
    expect(new RolloutBatch({ nonTensorBatch: { p: [1, 2, 3] } }).length).toBe(3);
    expect(new RolloutBatch().length).toBe(0);
    expect(new RolloutBatch({ metaInfo: { a: 1 } }).length).toBe(0);
  });

  it('names the offending key and both sizes', () => {
    expect(() => new RolloutBatch({ batch: { x: f32([4, 2], Array(8).fill(0)), y: f32([3], [0, 0, 0]) } }))
      .toThrow('RolloutBatch.constructor: batch["y"] has 3 rows but batch["x"] has 4');
    expect(() => new RolloutBatch({ batch: { x: f32([2], [0, 0]) }, nonTensorBatch: { p: ['a'] } }))
      .toThrow('nonTensorBatch["p"] has 1 items but batch["x"] has 2');
    expect(() => new RolloutBatch({ nonTensorBatch: { p: ['a'], q: [] } })).toThrow('nonTensorBatch["q"] has 0 items but nonTensorBatch["p"] has 1');
    expect(() => new RolloutBatch({ batch: { s: f32([], [1]) } })).toThrow('batch["s"] is a scalar');
    expect(() => new RolloutBatch({ batch: { x: f32([2, 2], [1]) } })).toThrow('batch["x"]: shape [2,2] needs 4 elements, data has 1');
    expect(() => new RolloutBatch({ nonTensorBatch: { p: 'abc' as unknown as unknown[] } })).toThrow('nonTensorBatch["p"] is not an array');
  });

  it('copies the records it is given, so later edits to them do not leak in', () => {
    const batch = { x: f32([1], [1]) };
    const meta = { a: 1 };
    const b = new RolloutBatch({ batch, metaInfo: meta });
    (batch as Record<string, HostTensor>).y = f32([5], [0, 0, 0, 0, 0]);
    meta.a = 2;
    expect(Object.keys(b.batch)).toEqual(['x']);
    expect(b.metaInfo.a).toBe(1);
  });
});

describe('RolloutBatch operations', () => {
  it('concat joins rows, keeps the first metaInfo, and checks keys and tensor shapes', () => {
    const [a, b] = sample().chunk(2);
    const other = new RolloutBatch({ batch: b.batch, nonTensorBatch: b.nonTensorBatch, metaInfo: { step: 8 } });
    const c = RolloutBatch.concat([other, a]);
    expect(rowsOf(c)).toEqual([2, 3, 0, 1]);
    expect(xOf(c)).toEqual([20, 21, 30, 31, 0, 1, 10, 11]);
    expect(c.nonTensorBatch.prompt).toEqual(['c', 'd', 'a', 'b']);
    expect(c.metaInfo).toEqual({ step: 8 });
    expect(rowsOf(RolloutBatch.concat([a]))).toEqual([0, 1]);

    expect(() => RolloutBatch.concat([])).toThrow('RolloutBatch.concat: no batches');
    expect(() => RolloutBatch.concat([a, a.select({ batchKeys: ['x'] })])).toThrow('batch 1 lacks tensor key "id"');
    expect(() => RolloutBatch.concat([a.select({ batchKeys: ['x'] }), a])).toThrow('batch 1 has tensor key "id" that batch 0 lacks');
    expect(() => RolloutBatch.concat([a, a.select({ nonTensorKeys: [] })])).toThrow('batch 1 lacks non-tensor key "prompt"');
    const wide = new RolloutBatch({ batch: { x: f32([1, 3], [0, 0, 0]), id: i64([9n]) }, nonTensorBatch: { prompt: ['z'] } });
    expect(() => RolloutBatch.concat([a, wide])).toThrow(/concat: tensor "x": .*does not match/);
  });

  it('chunk gives equal views and needs divisibility', () => {
    const b = sample();
    const parts = b.chunk(2);
    expect(parts.map(rowsOf)).toEqual([[0, 1], [2, 3]]);
    expect(parts[1].nonTensorBatch.prompt).toEqual(['c', 'd']);
    expect(parts[1].metaInfo).toEqual(b.metaInfo);
    expect(parts[1].metaInfo).not.toBe(b.metaInfo);
    expect(parts[1].batch.x.data.buffer).toBe(b.batch.x.data.buffer);
    expect(b.chunk(4).map(rowsOf)).toEqual([[0], [1], [2], [3]]);
    expect(new RolloutBatch().chunk(3).map((p) => p.length)).toEqual([0, 0, 0]);
    expect(() => b.chunk(3)).toThrow('RolloutBatch.chunk: length 4 is not divisible into 3 chunks');
    expect(() => b.chunk(0)).toThrow('the number of chunks must be an integer >= 1, got 0');
    expect(() => b.chunk(1.5)).toThrow(/integer >= 1/);
  });

  it('split gives pieces of a size, the last smaller', () => {
    const b = sample();
    expect(b.split(3).map(rowsOf)).toEqual([[0, 1, 2], [3]]);
    expect(b.split(3)[1].nonTensorBatch.prompt).toEqual(['d']);
    expect(b.split(4).map(rowsOf)).toEqual([[0, 1, 2, 3]]);
    expect(b.split(10).map(rowsOf)).toEqual([[0, 1, 2, 3]]);
    expect(new RolloutBatch().split(2)).toEqual([]);
    expect(() => b.split(0)).toThrow('RolloutBatch.split: the split size must be an integer >= 1, got 0');
  });

  it('select keeps the named keys and rejects unknown ones', () => {
    const b = sample();
    const s = b.select({ batchKeys: ['x'], nonTensorKeys: [], metaKeys: ['step'] });
    expect(Object.keys(s.batch)).toEqual(['x']);
    expect(s.batch.x).toBe(b.batch.x);
    expect(s.nonTensorBatch).toEqual({});
    expect(s.metaInfo).toEqual({ step: 7 });
    const all = b.select();
    expect(Object.keys(all.batch)).toEqual(['x', 'id']);
    expect(all.metaInfo).toEqual(b.metaInfo);
    expect(() => b.select({ batchKeys: ['nope'] })).toThrow('RolloutBatch.select: no tensor key "nope"');
    expect(() => b.select({ nonTensorKeys: ['nope'] })).toThrow('no non-tensor key "nope"');
    expect(() => b.select({ metaKeys: ['nope'] })).toThrow('no meta key "nope"');
  });

  it('selectIdxs gathers rows by index or mask', () => {
    const b = sample();
    const s = b.selectIdxs([3, 0, 3]);
    expect(rowsOf(s)).toEqual([3, 0, 3]);
    expect(xOf(s)).toEqual([30, 31, 0, 1, 30, 31]);
    expect(s.nonTensorBatch.prompt).toEqual(['d', 'a', 'd']);
    expect(s.batch.x.data.buffer).not.toBe(b.batch.x.data.buffer);
    expect(rowsOf(b.selectIdxs(Int32Array.of(1)))).toEqual([1]);
    expect(rowsOf(b.selectIdxs([true, false, false, true]))).toEqual([0, 3]);
    expect(b.selectIdxs([]).length).toBe(0);
    expect(b.selectIdxs([]).batch.x.shape).toEqual([0, 2]);
    expect(() => b.selectIdxs([4])).toThrow('RolloutBatch.selectIdxs: index 4 is out of range for length 4');
    expect(() => b.selectIdxs([-1])).toThrow('index -1 is out of range');
    expect(() => b.selectIdxs([0.5])).toThrow('index 0.5 is out of range');
    expect(() => b.selectIdxs([true])).toThrow('mask has 1 entries for length 4');
  });

  it('union merges keys, accepts identical duplicates and names conflicting ones', () => {
    const b = sample();
    const extra = new RolloutBatch({
      batch: { x: f32([4, 2], [0, 1, 10, 11, 20, 21, 30, 31]), reward: f32([4], [1, 0, 1, 0]) },
      nonTensorBatch: { prompt: ['a', 'b', 'c', 'd'], uid: [1, 1, 2, 2] },
      metaInfo: { step: 7, lr: 0.1 },
    });
    const u = b.union(extra);
    expect(Object.keys(u.batch).sort()).toEqual(['id', 'reward', 'x']);
    expect(Object.keys(u.nonTensorBatch).sort()).toEqual(['prompt', 'uid']);
    expect(u.metaInfo).toEqual({ step: 7, tags: ['t'], lr: 0.1 });
    expect(Object.keys(b.batch)).toEqual(['x', 'id']); // unchanged
    expect(b.union(new RolloutBatch({ metaInfo: { k: 1 } })).metaInfo.k).toBe(1);

    const withX = (values: number[]) => new RolloutBatch({ batch: { x: f32([4, 2], values) } });
    expect(() => b.union(withX([0, 1, 10, 11, 20, 21, 30, 32]))).toThrow('RolloutBatch.union: tensor "x" differs between the two batches');
    expect(() => b.union(new RolloutBatch({ batch: { x: { ...b.batch.x, dtype: 'I32', data: new Int32Array(b.batch.x.data.buffer.slice(0)) } } })))
      .toThrow('tensor "x" differs');
    expect(() => b.union(new RolloutBatch({ nonTensorBatch: { prompt: ['a', 'b', 'c', 'e'] } }))).toThrow('non-tensor "prompt" differs');
    expect(() => b.union(new RolloutBatch({ metaInfo: { tags: ['u'] } }))).toThrow('meta "tags" differs');
    expect(() => b.union(new RolloutBatch({ nonTensorBatch: { p: [1] } }))).toThrow('RolloutBatch.union: lengths differ (4 vs 1)');
    const nan = new RolloutBatch({ nonTensorBatch: { v: [NaN] }, metaInfo: { m: { a: [NaN] } } });
    expect(nan.union(nan).length).toBe(1); // NaN equals NaN, as in verl's union
  });

  it('repeat interleaves (GRPO groups) or tiles', () => {
    const b = sample().selectIdxs([0, 1]);
    const r = b.repeat(3);
    expect(rowsOf(r)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(xOf(r)).toEqual([0, 1, 0, 1, 0, 1, 10, 11, 10, 11, 10, 11]);
    expect(r.nonTensorBatch.prompt).toEqual(['a', 'a', 'a', 'b', 'b', 'b']);
    expect(rowsOf(b.repeat(2, { interleave: false }))).toEqual([0, 1, 0, 1]);
    expect(b.repeat(2, { interleave: false }).nonTensorBatch.prompt).toEqual(['a', 'b', 'a', 'b']);
    expect(b.repeat(0).length).toBe(0);
    expect(b.repeat(1).metaInfo).toEqual(b.metaInfo);
    expect(() => b.repeat(-1)).toThrow('RolloutBatch.repeat: times must be an integer >= 0, got -1');
  });

  it('padToDivisor repeats rows from the start, and unpad undoes it', () => {
    const b = sample().selectIdxs([0, 1, 2]);
    const { batch: p, padSize } = b.padToDivisor(4);
    expect(padSize).toBe(1);
    expect(rowsOf(p)).toEqual([0, 1, 2, 0]);
    expect(p.nonTensorBatch.prompt).toEqual(['a', 'b', 'c', 'a']);
    const big = b.padToDivisor(8); // more padding than rows: cycles, as verl's loop does
    expect(big.padSize).toBe(5);
    expect(rowsOf(big.batch)).toEqual([0, 1, 2, 0, 1, 2, 0, 1]);
    expect(b.padToDivisor(3)).toEqual({ batch: b, padSize: 0 });
    expect(new RolloutBatch().padToDivisor(4).padSize).toBe(0);
    expect(() => b.padToDivisor(0)).toThrow('the divisor must be an integer >= 1');

    const u = big.batch.unpad(big.padSize);
    expect(rowsOf(u)).toEqual([0, 1, 2]);
    expect(u.nonTensorBatch.prompt).toEqual(['a', 'b', 'c']);
    expect(b.unpad(0)).toBe(b);
    expect(b.unpad(3).length).toBe(0);
    expect(() => b.unpad(4)).toThrow('RolloutBatch.unpad: padSize 4 exceeds length 3');
    expect(() => b.unpad(-1)).toThrow('padSize must be an integer >= 0');
  });
});

const DTYPES = Object.keys(DTYPE_BYTES) as DType[];
const jsonValue = fc.jsonValue({ maxDepth: 3 });
const viaJson = (v: unknown) => JSON.parse(JSON.stringify(v)); // only -0 changes (to 0)

describe('RolloutBatch safetensors round trip', () => {
  const arbBatch = fc.integer({ min: 0, max: 5 }).chain((rows) => fc.record({
    batch: fc.dictionary(fc.string({ maxLength: 6 }).filter((s) => s !== '__metadata__'),
      fc.record({ dtype: fc.constantFrom(...DTYPES), inner: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }) }).chain(({ dtype, inner }) => {
        const bytes = [rows, ...inner].reduce((a, d) => a * d, DTYPE_BYTES[dtype]);
        return fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b): HostTensor => ({
          dtype, shape: [rows, ...inner], data: new DTYPE_ARRAY[dtype](b.slice().buffer, 0, bytes / DTYPE_BYTES[dtype]),
        }));
      }), { maxKeys: 4, noNullPrototype: true }),
    nonTensorBatch: fc.dictionary(fc.string({ maxLength: 6 }), fc.array(jsonValue, { minLength: rows, maxLength: rows }), { maxKeys: 3, noNullPrototype: true }),
    metaInfo: fc.dictionary(fc.string({ maxLength: 6 }), jsonValue, { maxKeys: 3, noNullPrototype: true }),
  }));

  it('preserves tensors bitwise and values exactly', () => {
    fc.assert(fc.property(arbBatch, (init) => {
      const b = new RolloutBatch(init);
      const back = RolloutBatch.fromSafetensors(b.toSafetensors());
      expect(Object.keys(back.batch).sort()).toEqual(Object.keys(b.batch).sort());
      for (const [k, t] of Object.entries(b.batch)) {
        expect(back.batch[k].dtype).toBe(t.dtype);
        expect(back.batch[k].shape).toEqual(t.shape);
        expect(tensorBytes(back.batch[k])).toEqual(tensorBytes(t));
      }
      expect(back.nonTensorBatch).toEqual(viaJson(b.nonTensorBatch));
      expect(back.metaInfo).toEqual(viaJson(b.metaInfo));
      expect(back.length).toBe(b.length);
    }), { numRuns: 300 });
  });

  it('saves and loads files atomically', async () => {
    const path = join(dir, 'batch.safetensors');
    const b = sample();
    await b.save(path);
    expect(readdirSync(dir)).toEqual(['batch.safetensors']);
    const back = await RolloutBatch.load(path);
    expect(rowsOf(back)).toEqual([0, 1, 2, 3]);
    expect(xOf(back)).toEqual(xOf(b));
    expect(back.nonTensorBatch).toEqual(b.nonTensorBatch);
    expect(back.metaInfo).toEqual(b.metaInfo);
  });

  it('names values that JSON cannot carry', () => {
    const bad = (metaInfo: Record<string, unknown>) => () => new RolloutBatch({ metaInfo }).toSafetensors();
    expect(bad({ ok: 1, x: NaN })).toThrow('RolloutBatch.toSafetensors: meta_info["x"] does not survive JSON');
    expect(bad({ x: undefined })).toThrow('meta_info["x"]');
    expect(bad({ x: 1n })).toThrow('meta_info["x"]');
    expect(bad({ x: new Date(0) })).toThrow('meta_info["x"]');
    expect(bad({ x: Float32Array.of(1) })).toThrow('meta_info["x"]');
    expect(bad({ x: [1, , 2] })).toThrow('meta_info["x"]');
    expect(() => new RolloutBatch({ nonTensorBatch: { p: [Infinity] } }).toSafetensors()).toThrow('non_tensor_batch["p"]');
  });

  it('reads plain safetensors files and rejects malformed batch metadata', () => {
    const plain = RolloutBatch.fromSafetensors(serializeSafetensors({ x: f32([2], [1, 2]) }, { format: 'pt' }));
    expect(plain.length).toBe(2);
    expect(plain.nonTensorBatch).toEqual({});
    expect(plain.metaInfo).toEqual({});
    const withMeta = (metadata: Record<string, string>) => () => RolloutBatch.fromSafetensors(serializeSafetensors({}, metadata));
    expect(withMeta({ meta_info: '{' })).toThrow('RolloutBatch.load: __metadata__.meta_info is not valid JSON');
    expect(withMeta({ meta_info: '[]' })).toThrow('__metadata__.meta_info is not a JSON object');
    expect(withMeta({ non_tensor_batch: '{"p": 3}' })).toThrow('__metadata__.non_tensor_batch["p"] is not an array');
    expect(() => RolloutBatch.fromSafetensors(serializeSafetensors({ x: f32([2], [1, 2]) }, { non_tensor_batch: '{"p": [1]}' })))
      .toThrow('nonTensorBatch["p"] has 1 items but batch["x"] has 2');
  });
});

const hasPython = spawnSync('python3', ['-c', 'import safetensors, numpy'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasPython)('RolloutBatch interop with Python', () => {
  it('the docs recipe (numpy in place of torch) reads a saved batch, and writes one back', async () => {
    const path = join(dir, 'py.safetensors');
    const b = new RolloutBatch({
      batch: { latents: f32([2, 3], [1, 2, 3, 4, 5, 6]), seed: i64([5n, 6n]) },
      nonTensorBatch: { prompt: ['a cat', 'a dog'], box: [[1, 2], [3, 4]] },
      metaInfo: { step: 3 },
    });
    await b.save(path);
    const script = `
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
path = sys.argv[1]
tensors = load_file(path)
with safe_open(path, framework="np") as f:
    metadata = f.metadata() or {}
def object_array(values):
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        arr[i] = v
    return arr
non_tensors = {k: object_array(v) for k, v in json.loads(metadata.get("non_tensor_batch", "{}")).items()}
meta_info = json.loads(metadata.get("meta_info", "{}"))
assert tensors["latents"].tolist() == [[1, 2, 3], [4, 5, 6]] and tensors["seed"].tolist() == [5, 6], tensors
assert non_tensors["box"].shape == (2,) and non_tensors["box"][1] == [3, 4], non_tensors
assert list(non_tensors["prompt"]) == ["a cat", "a dog"] and meta_info == {"step": 3}, (non_tensors, meta_info)
from safetensors.numpy import save_file
save_file({"r": np.array([0.5, 1.0], dtype=np.float32)}, sys.argv[2], metadata={
    "non_tensor_batch": json.dumps({"uid": ["x", "y"]}, allow_nan=False), "meta_info": json.dumps({"k": 1}, allow_nan=False)})
`;
    const back = join(dir, 'from-py.safetensors');
    const run = spawnSync('python3', ['-c', script, path, back], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const fromPy = await RolloutBatch.load(back);
    expect(Array.from(fromPy.batch.r.data as Float32Array)).toEqual([0.5, 1]);
    expect(fromPy.nonTensorBatch).toEqual({ uid: ['x', 'y'] });
    expect(fromPy.metaInfo).toEqual({ k: 1 });
  });
});
