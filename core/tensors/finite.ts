// Finds NaN and +-Infinity in float tensors of any dtype, by the exponent bits (all ones) of
// their raw values: no conversion of float16 / bfloat16 data.
import type { HostTensor } from './tensor.ts';

/** Index of the first non-finite element in [start, end), or -1; -1 for integer dtypes. */
export function firstNonFinite(t: HostTensor, start = 0, end = t.data.length): number {
  const d = t.data;
  switch (t.dtype) {
    case 'F32': {
      const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
      for (let i = start; i < end; i++) if ((bits[i] & 0x7f800000) === 0x7f800000) return i;
      return -1;
    }
    case 'F64': {
      const v = d as Float64Array;
      for (let i = start; i < end; i++) if (!Number.isFinite(v[i])) return i;
      return -1;
    }
    case 'F16':
    case 'BF16': {
      const mask = t.dtype === 'F16' ? 0x7c00 : 0x7f80;
      const bits = d as Uint16Array;
      for (let i = start; i < end; i++) if ((bits[i] & mask) === mask) return i;
      return -1;
    }
    default:
      return -1;
  }
}

/** "NaN at [2, 0, 5]": the first non-finite element of a tensor, for error messages. */
export function describeNonFinite(t: HostTensor, index: number): string {
  const value = t.dtype === 'F32' || t.dtype === 'F64' ? String((t.data as Float32Array)[index]) : 'NaN or Infinity';
  const at: number[] = [];
  let rest = index;
  for (let k = t.shape.length - 1; k >= 0; k--) {
    at.unshift(rest % t.shape[k]);
    rest = Math.floor(rest / t.shape[k]);
  }
  return `${value} at [${at.join(', ')}]`;
}
