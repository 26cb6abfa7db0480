// Finds NaN and +-Infinity in float tensors of any dtype, by the exponent bits (all ones) of
// their raw values: no conversion of float16 / bfloat16 data.
import type { HostTensor } from './tensor.ts';

/** Index of the first non-finite element in [start, end), or -1; -1 for integer dtypes. */
export function firstNonFinite(t: HostTensor, start = 0, end = t.data.length): number {
  const d = t.data;
  switch (t.dtype) {
    case 'F32':
      return firstAllOnes32(new Int32Array(d.buffer, d.byteOffset, d.length), 0x7f800000, start, end);
    case 'F64': {
      const v = d as Float64Array;
      for (let i = start; i < end; i++) if (!Number.isFinite(v[i])) return i;
      return -1;
    }
    case 'F16':
    case 'BF16':
      return firstAllOnes16(d as Uint16Array, t.dtype === 'F16' ? 0x7c00 : 0x7f80, start, end);
    default:
      return -1;
  }
}

/**
 * First index whose `mask` bits are all ones, eight elements per loop step (compares that are
 * never true cost no mispredicted branch: 1.3x the plain loop on random weights; Math.max of the
 * eight masked values branches on the data and runs at a third of the speed). Two copies, one per
 * array type: V8 optimizes a function for the array types it has seen (1.7x slower with both).
 */
function firstAllOnes32(bits: Int32Array, mask: number, start: number, end: number): number {
  let i = start;
  for (; i + 8 <= end; i += 8) {
    if ((bits[i] & mask) === mask || (bits[i + 1] & mask) === mask || (bits[i + 2] & mask) === mask || (bits[i + 3] & mask) === mask ||
      (bits[i + 4] & mask) === mask || (bits[i + 5] & mask) === mask || (bits[i + 6] & mask) === mask || (bits[i + 7] & mask) === mask) break;
  }
  for (; i < end; i++) if ((bits[i] & mask) === mask) return i;
  return -1;
}

function firstAllOnes16(bits: Uint16Array, mask: number, start: number, end: number): number {
  let i = start;
  for (; i + 8 <= end; i += 8) {
    if ((bits[i] & mask) === mask || (bits[i + 1] & mask) === mask || (bits[i + 2] & mask) === mask || (bits[i + 3] & mask) === mask ||
      (bits[i + 4] & mask) === mask || (bits[i + 5] & mask) === mask || (bits[i + 6] & mask) === mask || (bits[i + 7] & mask) === mask) break;
  }
  for (; i < end; i++) if ((bits[i] & mask) === mask) return i;
  return -1;
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
