// Host tensors: a dtype tag, a shape and a typed array, batch-first by convention.
// float16 and bfloat16 travel as raw Uint16Array bits (as ONNX Runtime's JS API does).

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type TypedArray =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array
  | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

type ArrayCtor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; new (length: number): TypedArray; BYTES_PER_ELEMENT: number };

export const DTYPE_ARRAY: Record<DType, ArrayCtor> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array,
  I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
} as unknown as Record<DType, ArrayCtor>;

/** The floating-point dtypes (weights and LoRA factors may come in any of them). */
export const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F32', 'F16', 'BF16', 'F64']);

/**
 * A caller's `{ dtype, shape, data }` checked into a HostTensor: a known dtype, a shape of
 * non-negative integers, data of the dtype's array type and of the shape's size. Errors start
 * with `where` ("loadWeights: tensor 'x.weight'").
 */
export function asTensor(value: unknown, where: string): HostTensor {
  if (value === null || typeof value !== 'object') throw new Error(`${where} must be { dtype, shape, data }, got ${value === null ? 'null' : typeof value}`);
  const { dtype, shape, data } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const Ctor = DTYPE_ARRAY[dtype as DType];
  if (!(data instanceof Ctor)) {
    throw new Error(`${where}: ${dtype} data must be a ${Ctor.name}, got ${(data as object | undefined)?.constructor?.name ?? typeof data}`);
  }
  if (data.length !== numel(shape)) throw new Error(`${where}: shape ${JSON.stringify(shape)} needs ${numel(shape)} elements, data has ${data.length}`);
  return { dtype: dtype as DType, shape, data };
}

/**
 * A typed array of `bytes` bytes for `dtype`, unpooled and not zero-filled: for readers that write
 * every byte before anyone sees it (zeroing cost 0.7 of the copy's own time in a profile).
 */
export function uninitializedArray(dtype: DType, bytes: number): TypedArray {
  const Ctor = DTYPE_ARRAY[dtype];
  return new Ctor(Buffer.allocUnsafeSlow(bytes).buffer, 0, bytes / Ctor.BYTES_PER_ELEMENT) as TypedArray;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensor(dtype: DType, shape: readonly number[], data?: TypedArray): HostTensor {
  const n = numel(shape);
  const arr = data ?? new DTYPE_ARRAY[dtype](n);
  if (arr.length !== n) {
    throw new Error(`tensor: ${dtype}${JSON.stringify(shape)} needs ${n} elements, got ${arr.length}`);
  }
  return { dtype, shape: [...shape], data: arr };
}

export const f32 = (shape: readonly number[], data?: Float32Array): HostTensor & { data: Float32Array } =>
  tensor('F32', shape, data) as HostTensor & { data: Float32Array };

/** Bytes of the tensor's data as a Uint8Array view (no copy). */
export function tensorBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Rows [start, end) along the first dimension, as a view (no copy). */
export function sliceRows<T extends HostTensor>(t: T, start: number, end: number): T {
  const row = numel(t.shape.slice(1));
  const data = t.data.subarray(start * row, end * row) as TypedArray;
  return { dtype: t.dtype, shape: [end - start, ...t.shape.slice(1)], data } as unknown as T;
}

/** Concatenates tensors of one dtype along the first dimension (one copy). */
export function concatRows(parts: readonly HostTensor[]): HostTensor {
  if (parts.length === 0) throw new Error('concatRows: no tensors');
  const [first] = parts;
  const inner = first.shape.slice(1);
  for (const p of parts) {
    if (p.dtype !== first.dtype || p.shape.length !== first.shape.length || p.shape.slice(1).some((d, i) => d !== inner[i])) {
      throw new Error(`concatRows: ${p.dtype}${JSON.stringify(p.shape)} does not match ${first.dtype}${JSON.stringify(first.shape)}`);
    }
  }
  const rows = parts.reduce((s, p) => s + p.shape[0], 0);
  const out = tensor(first.dtype, [rows, ...inner]);
  let off = 0;
  for (const p of parts) {
    (out.data as Float32Array).set(p.data as Float32Array, off);
    off += p.data.length;
  }
  return out;
}
