// float16 / bfloat16 <-> float32 conversions on raw bits. Widening is exact; narrowing rounds to
// nearest, ties to even, as PyTorch's .half() / .bfloat16() do. NaN payloads are kept where they fit.
import type { HostTensor, TypedArray } from './tensor.ts';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float16 bits -> float32 bits, for one value (the table below is built from it). */
function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  // Zero or subnormal: mant * 2^-24 is exact in float32.
  scratchF32[0] = mant * 2 ** -24;
  return (sign | scratchU32[0]) >>> 0;
}

let halfTable: Uint32Array | undefined; // 256 KiB, built on first use
function halfToFloatTable(): Uint32Array {
  if (!halfTable) {
    halfTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloatBits(h);
  }
  return halfTable;
}

/** float32 bits -> float16 bits, round to nearest even. */
export function floatBitsToHalf(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const abs = f & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    const payload = (abs >>> 13) & 0x3ff;
    return sign | 0x7c00 | (payload || 0x200); // keep a NaN a NaN when the payload's top bits are 0
  }
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds past 65504
  if (abs < 0x38800000) {
    // Below the smallest normal half: result is a subnormal (or zero) in units of 2^-24.
    if (abs < 0x33000000) return sign; // < 2^-25: rounds to zero
    const exp = abs >>> 23;
    const mant = (abs & 0x7fffff) | 0x800000;
    const shift = 126 - exp; // 14..24
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (abs - 0x38000000) >>> 13; // rebias exponent 127 -> 15, drop 13 mantissa bits
  const rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent is correct
  return sign | h;
}

/** float32 bits -> bfloat16 bits, round to nearest even. */
export function floatBitsToBf16(f: number): number {
  if ((f & 0x7fffffff) > 0x7f800000) {
    const h = f >>> 16;
    return (h & 0x7f) ? h : h | 0x40; // NaN whose payload sat in the dropped bits: make it quiet
  }
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

export const halfToFloat = (h: number): number => {
  scratchU32[0] = halfToFloatTable()[h & 0xffff];
  return scratchF32[0];
};
export const bf16ToFloat = (h: number): number => {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
};
export const floatToHalf = (x: number): number => {
  scratchF32[0] = x;
  return floatBitsToHalf(scratchU32[0]);
};
export const floatToBf16 = (x: number): number => {
  scratchF32[0] = x;
  return floatBitsToBf16(scratchU32[0]);
};

/**
 * The tensor's values as float32. F32 returns `t.data` itself (no copy); F16/BF16 widen exactly,
 * bit for bit (NaN payloads included); F64 and integers round to the nearest float32.
 */
export function toFloat32(t: HostTensor): Float32Array {
  const src = t.data;
  switch (t.dtype) {
    case 'F32':
      return src as Float32Array;
    case 'F16': {
      const table = halfToFloatTable();
      const h = src as Uint16Array;
      const bits = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) bits[i] = table[h[i]];
      return new Float32Array(bits.buffer);
    }
    case 'BF16': {
      const h = src as Uint16Array;
      const bits = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'I64': {
      const out = new Float32Array(src.length);
      const v = src as BigInt64Array;
      for (let i = 0; i < v.length; i++) out[i] = Number(v[i]);
      return out;
    }
    default:
      return Float32Array.from(src as Float64Array); // F64, I32, I16, I8, U8, BOOL
  }
}

export type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16';

/** float32 values -> data of a float dtype (F16/BF16 as Uint16Array bits, rounded to nearest even). */
export function fromFloat32(data: Float32Array, dtype: FloatDType): TypedArray {
  switch (dtype) {
    case 'F32':
      return data.slice();
    case 'F64':
      return Float64Array.from(data);
    case 'F16':
    case 'BF16': {
      const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
      const out = new Uint16Array(data.length);
      const narrow = dtype === 'F16' ? floatBitsToHalf : floatBitsToBf16;
      for (let i = 0; i < bits.length; i++) out[i] = narrow(bits[i]);
      return out;
    }
    default:
      throw new Error(`fromFloat32: ${String(dtype)} is not a float dtype`);
  }
}
