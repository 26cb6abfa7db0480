// RolloutBatch: verl's DataProto in TypeScript. Per-sample tensors (sharing the first dimension),
// per-sample JSON values, and batch-wide meta info; saved as safetensors that Python reads as is.
// Row slices (chunk, split, unpad) are views of the tensors; gathers (selectIdxs, repeat, padToDivisor,
// concat) copy. Operations return new batches; the metaInfo object is copied shallowly, never shared.
import {
  parseSafetensors, readSafetensorsFile, safetensorsChunks, serializeSafetensors, writeSafetensorsFile, type SafetensorsFile,
} from '../tensors/safetensors.ts';
import { concatRows, DTYPE_ARRAY, numel, sliceRows, tensorBytes, type HostTensor } from '../tensors/tensor.ts';
import type { RolloutMeta, RolloutSamples, RolloutTensors } from '../protocol.ts';

export interface RolloutBatchInit {
  batch?: Record<string, HostTensor>;
  nonTensorBatch?: Record<string, unknown[]>;
  metaInfo?: Record<string, unknown>;
}

export interface SelectKeys {
  batchKeys?: readonly string[];
  nonTensorKeys?: readonly string[];
  metaKeys?: readonly string[];
}

const NON_TENSOR_KEY = 'non_tensor_batch';
const META_KEY = 'meta_info';

function fail(op: string, message: string): never {
  throw new Error(`RolloutBatch.${op}: ${message}`);
}

function checkCount(op: string, what: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) fail(op, `${what} must be an integer >= ${min}, got ${n}`);
}

export class RolloutBatch {
  /** Tensors by name (responses, latents_clean, ... and what plugins add), batch-first. */
  readonly batch: RolloutTensors;
  readonly nonTensorBatch: RolloutSamples;
  readonly metaInfo: RolloutMeta;

  constructor(init: RolloutBatchInit = {}) {
    this.batch = { ...init.batch };
    this.nonTensorBatch = { ...init.nonTensorBatch };
    this.metaInfo = { ...init.metaInfo };
    let pivot: string | undefined;
    let rows = 0;
    for (const [key, t] of Object.entries(this.batch)) {
      if (t.shape.length === 0) fail('constructor', `batch[${JSON.stringify(key)}] is a scalar; batch tensors need a first (batch) dimension`);
      if (t.data.length !== numel(t.shape)) {
        fail('constructor', `batch[${JSON.stringify(key)}]: shape ${JSON.stringify(t.shape)} needs ${numel(t.shape)} elements, data has ${t.data.length}`);
      }
      if (pivot === undefined) [pivot, rows] = [`batch[${JSON.stringify(key)}]`, t.shape[0]];
      else if (t.shape[0] !== rows) fail('constructor', `batch[${JSON.stringify(key)}] has ${t.shape[0]} rows but ${pivot} has ${rows}`);
    }
    for (const [key, values] of Object.entries(this.nonTensorBatch)) {
      if (!Array.isArray(values)) fail('constructor', `nonTensorBatch[${JSON.stringify(key)}] is not an array`);
      if (pivot === undefined) [pivot, rows] = [`nonTensorBatch[${JSON.stringify(key)}]`, values.length];
      else if (values.length !== rows) fail('constructor', `nonTensorBatch[${JSON.stringify(key)}] has ${values.length} items but ${pivot} has ${rows}`);
    }
  }

  /** Number of samples: the shared first dimension (0 when there is no per-sample data). */
  get length(): number {
    const t = Object.values(this.batch)[0];
    if (t) return t.shape[0];
    return Object.values(this.nonTensorBatch)[0]?.length ?? 0;
  }

  private hasRows(): boolean {
    return Object.keys(this.batch).length > 0 || Object.keys(this.nonTensorBatch).length > 0;
  }

  /** Rows [start, end) as views. */
  private rows(start: number, end: number): RolloutBatch {
    return new RolloutBatch({
      batch: mapValues(this.batch, (t) => sliceRows(t, start, end)),
      nonTensorBatch: mapValues(this.nonTensorBatch, (v) => v.slice(start, end)),
      metaInfo: this.metaInfo,
    });
  }

  /** Rows by index (copies); indices are checked. */
  private gather(op: string, idx: readonly number[]): RolloutBatch {
    const n = this.length;
    for (const i of idx) if (!Number.isInteger(i) || i < 0 || i >= n) fail(op, `index ${i} is out of range for length ${n}`);
    return new RolloutBatch({
      batch: mapValues(this.batch, (t) => gatherRows(t, idx)),
      nonTensorBatch: mapValues(this.nonTensorBatch, (v) => idx.map((i) => v[i])),
      metaInfo: this.metaInfo,
    });
  }

  /**
   * Concatenates along the first dimension. All batches need the same keys, and tensors of a key the
   * same dtype and trailing shape. metaInfo is the first batch's (as verl does); the others' is dropped.
   */
  static concat(batches: readonly RolloutBatch[]): RolloutBatch {
    if (batches.length === 0) fail('concat', 'no batches');
    const [first] = batches;
    batches.forEach((b, i) => {
      sameKeys('concat', `batch ${i}`, 'tensor', first.batch, b.batch);
      sameKeys('concat', `batch ${i}`, 'non-tensor', first.nonTensorBatch, b.nonTensorBatch);
    });
    const batch = mapValues(first.batch, (_, key) => {
      try {
        return concatRows(batches.map((b) => b.batch[key]));
      } catch (e) {
        return fail('concat', `tensor ${JSON.stringify(key)}: ${(e as Error).message}`);
      }
    });
    const nonTensorBatch = mapValues(first.nonTensorBatch, (_, key) => batches.flatMap((b) => b.nonTensorBatch[key]));
    return new RolloutBatch({ batch, nonTensorBatch, metaInfo: first.metaInfo });
  }

  /** `n` equal pieces (views); the length must be divisible by `n`, as in verl without auto-padding. */
  chunk(n: number): RolloutBatch[] {
    checkCount('chunk', 'the number of chunks', n, 1);
    const len = this.length;
    if (len % n !== 0) fail('chunk', `length ${len} is not divisible into ${n} chunks (pad with padToDivisor first)`);
    const size = len / n;
    return Array.from({ length: n }, (_, i) => this.rows(i * size, (i + 1) * size));
  }

  /** Pieces of `size` rows (views); the last may be smaller. An empty batch gives no pieces. */
  split(size: number): RolloutBatch[] {
    checkCount('split', 'the split size', size, 1);
    const out: RolloutBatch[] = [];
    for (let i = 0; i < this.length; i += size) out.push(this.rows(i, Math.min(i + size, this.length)));
    return out;
  }

  /** A batch with only the given keys (all of a section when its list is omitted); a missing key is an error. Shares tensors. */
  select({ batchKeys, nonTensorKeys, metaKeys }: SelectKeys = {}): RolloutBatch {
    return new RolloutBatch({
      batch: pick('select', 'tensor', this.batch, batchKeys),
      nonTensorBatch: pick('select', 'non-tensor', this.nonTensorBatch, nonTensorKeys),
      metaInfo: pick('select', 'meta', this.metaInfo, metaKeys),
    });
  }

  /** Rows by index, in the given order, repeats allowed; or by a boolean mask of the batch's length. Copies. */
  selectIdxs(indices: ArrayLike<number> | readonly boolean[]): RolloutBatch {
    const list = Array.from(indices as ArrayLike<number | boolean>);
    if (list.length > 0 && typeof list[0] === 'boolean') {
      if (list.length !== this.length) fail('selectIdxs', `mask has ${list.length} entries for length ${this.length}`);
      return this.gather('selectIdxs', list.flatMap((keep, i) => (keep ? [i] : [])));
    }
    return this.gather('selectIdxs', list as number[]);
  }

  /**
   * Merges the keys of both batches (verl's union, without mutating either). A key present in both
   * must hold identical content (tensors bitwise, values deeply); lengths must match when both have rows.
   */
  union(other: RolloutBatch): RolloutBatch {
    if (this.hasRows() && other.hasRows() && this.length !== other.length) {
      fail('union', `lengths differ (${this.length} vs ${other.length})`);
    }
    const merge = <T>(what: string, a: Record<string, T>, b: Record<string, T>, equal: (x: T, y: T) => boolean) => {
      for (const key of Object.keys(b)) {
        if (Object.hasOwn(a, key) && !equal(a[key], b[key])) fail('union', `${what} ${JSON.stringify(key)} differs between the two batches`);
      }
      return { ...a, ...b };
    };
    return new RolloutBatch({
      batch: merge('tensor', this.batch, other.batch, tensorsEqual),
      nonTensorBatch: merge('non-tensor', this.nonTensorBatch, other.nonTensorBatch, deepEqual),
      metaInfo: merge('meta', this.metaInfo, other.metaInfo, deepEqual),
    });
  }

  /** Each sample `times` times (copies): interleaved [a,a,b,b] (GRPO groups) or tiled [a,b,a,b]. */
  repeat(times: number, { interleave = true }: { interleave?: boolean } = {}): RolloutBatch {
    checkCount('repeat', 'times', times, 0);
    const n = this.length;
    const idx = Array.from({ length: n * times }, (_, k) => (interleave ? Math.floor(k / times) : k % n));
    return this.gather('repeat', idx);
  }

  /**
   * Pads to a multiple of `divisor` by appending rows from the start, cycling (verl's
   * pad_dataproto_to_divisor). Returns this batch itself when no padding is needed.
   */
  padToDivisor(divisor: number): { batch: RolloutBatch; padSize: number } {
    checkCount('padToDivisor', 'the divisor', divisor, 1);
    const n = this.length;
    if (n % divisor === 0) return { batch: this, padSize: 0 };
    const padSize = divisor - (n % divisor);
    const idx = Array.from({ length: n + padSize }, (_, k) => k % n);
    return { batch: this.gather('padToDivisor', idx), padSize };
  }

  /** Drops the last `padSize` rows (views): undoes padToDivisor. */
  unpad(padSize: number): RolloutBatch {
    checkCount('unpad', 'padSize', padSize, 0);
    if (padSize > this.length) fail('unpad', `padSize ${padSize} exceeds length ${this.length}`);
    return padSize === 0 ? this : this.rows(0, this.length - padSize);
  }

  /**
   * safetensors bytes: tensors under their own names; `__metadata__` holds `non_tensor_batch` and
   * `meta_info` as JSON strings. Values must survive JSON exactly (no NaN, undefined, BigInt, class
   * instances, typed arrays); the offending key is named otherwise. -0 is written as 0.
   */
  toSafetensors(): Uint8Array {
    return serializeSafetensors(this.batch, this.jsonMetadata());
  }

  /** toSafetensors' bytes as the header and views of each tensor, in file order (nothing copied). */
  toSafetensorsChunks(): Uint8Array[] {
    return safetensorsChunks(this.batch, this.jsonMetadata());
  }

  /** Parses bytes written by toSafetensors (or any safetensors file). Tensors are views of `bytes`. */
  static fromSafetensors(bytes: Uint8Array): RolloutBatch {
    return RolloutBatch.fromFile(parseSafetensors(bytes));
  }

  /** Writes the toSafetensors layout atomically. */
  async save(path: string): Promise<void> {
    await writeSafetensorsFile(path, this.batch, this.jsonMetadata());
  }

  static async load(path: string): Promise<RolloutBatch> {
    return RolloutBatch.fromFile(await readSafetensorsFile(path));
  }

  private jsonMetadata(): Record<string, string> {
    return { [NON_TENSOR_KEY]: exactJson(NON_TENSOR_KEY, this.nonTensorBatch), [META_KEY]: exactJson(META_KEY, this.metaInfo) };
  }

  private static fromFile(file: SafetensorsFile): RolloutBatch {
    const read = (key: string): Record<string, unknown> => {
      const text = file.metadata[key];
      if (text === undefined) return {};
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        return fail('load', `__metadata__.${key} is not valid JSON (${(e as Error).message})`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('load', `__metadata__.${key} is not a JSON object`);
      return value as Record<string, unknown>;
    };
    const nonTensorBatch = read(NON_TENSOR_KEY);
    for (const [k, v] of Object.entries(nonTensorBatch)) {
      if (!Array.isArray(v)) fail('load', `__metadata__.${NON_TENSOR_KEY}[${JSON.stringify(k)}] is not an array`);
    }
    return new RolloutBatch({
      batch: Object.fromEntries(file.names.map((name) => [name, file.get(name)])),
      nonTensorBatch: nonTensorBatch as Record<string, unknown[]>,
      metaInfo: read(META_KEY),
    });
  }
}

function mapValues<T, U>(record: Record<string, T>, fn: (value: T, key: string) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, fn(v, k)]));
}

function sameKeys(op: string, which: string, what: string, a: object, b: object): void {
  for (const key of Object.keys(b)) if (!Object.hasOwn(a, key)) fail(op, `${which} has ${what} key ${JSON.stringify(key)} that batch 0 lacks`);
  for (const key of Object.keys(a)) if (!Object.hasOwn(b, key)) fail(op, `${which} lacks ${what} key ${JSON.stringify(key)}`);
}

function pick<T>(op: string, what: string, record: Record<string, T>, keys: readonly string[] | undefined): Record<string, T> {
  if (keys === undefined) return record;
  for (const key of keys) if (!Object.hasOwn(record, key)) fail(op, `no ${what} key ${JSON.stringify(key)}`);
  return Object.fromEntries(keys.map((k) => [k, record[k]]));
}

function gatherRows(t: HostTensor, idx: readonly number[]): HostTensor {
  const row = numel(t.shape.slice(1));
  const out = new DTYPE_ARRAY[t.dtype](idx.length * row) as Uint8Array;
  const src = t.data as Uint8Array;
  idx.forEach((r, i) => out.set(src.subarray(r * row, (r + 1) * row), i * row));
  return { dtype: t.dtype, shape: [idx.length, ...t.shape.slice(1)], data: out };
}

function tensorsEqual(a: HostTensor, b: HostTensor): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])
    && bytesEqual(tensorBytes(a), tensorBytes(b));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const isPlain = (v: object) => [Object.prototype, null].includes(Object.getPrototypeOf(v));

/** Structural equality for JSON-like values; NaN equals NaN, typed arrays compare bytes, other objects by identity. */
function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    return a.constructor === b.constructor
      && bytesEqual(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false; // a loop, not every(): holes count
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b) || !isPlain(a) || !isPlain(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length
    && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** JSON text of a record whose values survive JSON.parse unchanged; names the first key that would not. */
function exactJson(what: string, record: Record<string, unknown>): string {
  for (const [key, value] of Object.entries(record)) {
    let back: unknown;
    try {
      back = JSON.parse(JSON.stringify(value));
    } catch {
      back = Symbol('unrepresentable'); // BigInt, cycles, or undefined (JSON.stringify gives no text)
    }
    if (!deepEqual(back, value)) {
      fail('toSafetensors', `${what}[${JSON.stringify(key)}] does not survive JSON (use plain objects, arrays, strings, finite numbers, booleans, null)`);
    }
  }
  return JSON.stringify(record);
}
