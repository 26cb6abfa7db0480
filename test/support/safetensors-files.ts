// Random safetensors files and random cuts of them into pieces, for the streaming readers' tests.
import fc from 'fast-check';
import { serializeSafetensors } from '../../core/tensors/safetensors.ts';
import { DTYPE_ARRAY, DTYPE_BYTES, type DType, type HostTensor } from '../../core/tensors/tensor.ts';

const arbTensor: fc.Arbitrary<HostTensor> = fc
  .record({ dtype: fc.constantFrom(...(Object.keys(DTYPE_BYTES) as DType[])), shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }) })
  .chain(({ dtype, shape }) => fc.uint8Array({ minLength: shape.reduce((a, d) => a * d, DTYPE_BYTES[dtype]), maxLength: shape.reduce((a, d) => a * d, DTYPE_BYTES[dtype]) })
    .map((b) => ({ dtype, shape, data: new DTYPE_ARRAY[dtype](b.slice().buffer, 0, b.length / DTYPE_BYTES[dtype]) })));

/** The bytes of a file of up to 6 tensors of any dtype and small shapes. */
export const arbSafetensorsFile = fc.uniqueArray(fc.tuple(fc.string({ maxLength: 8 }).filter((s) => s !== '__metadata__'), arbTensor), { selector: ([n]) => n, maxLength: 6 })
  .map((e) => serializeSafetensors(new Map(e), { origin: 'test' }));

/** `bytes` cut at the given points (sorted, deduplicated, clamped), as separate copies. */
export function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  return [0, ...at].map((p, i) => bytes.slice(p, [...at, bytes.length][i]));
}
