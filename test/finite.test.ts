// firstNonFinite finds the first NaN or infinity by exponent bits, eight elements per compare:
// against a per-element reference, over random data, positions, ranges and dtypes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstNonFinite } from '../core/tensors/finite.ts';
import { floatToBf16, floatToHalf } from '../core/tensors/dtype-convert.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';

const SPECIAL = [NaN, Infinity, -Infinity];

function build(dtype: 'F32' | 'F16' | 'BF16' | 'F64', values: number[]): HostTensor {
  if (dtype === 'F32') return { dtype, shape: [values.length], data: Float32Array.from(values) };
  if (dtype === 'F64') return { dtype, shape: [values.length], data: Float64Array.from(values) };
  const narrow = dtype === 'F16' ? floatToHalf : floatToBf16;
  return { dtype, shape: [values.length], data: Uint16Array.from(values, narrow) };
}

describe('firstNonFinite', () => {
  it('agrees with a per-element check for every dtype, position and range', () => {
    fc.assert(fc.property(
      fc.constantFrom('F32' as const, 'F16' as const, 'BF16' as const, 'F64' as const),
      // Finite values within every dtype's range (F16 overflows past 65504).
      fc.array(fc.float({ min: -6e4, max: 6e4, noNaN: true }), { maxLength: 200 }),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(...SPECIAL)), { maxLength: 3 }),
      fc.nat(), fc.nat(),
      (dtype, finite, specials, a, b) => {
        const values = [...finite];
        for (const [at, v] of specials) if (values.length) values[at % values.length] = v;
        const t = build(dtype, values);
        const [start, end] = values.length ? [a % (values.length + 1), b % (values.length + 1)].sort((x, y) => x - y) : [0, 0];
        const expected = values.findIndex((v, i) => i >= start && i < end && !Number.isFinite(v));
        expect(firstNonFinite(t, start, end)).toBe(expected);
      },
    ), { numRuns: 500 });
  });

  it('finds one non-finite element in a large tensor wherever it lies', () => {
    const data = new Float32Array(4099);
    for (const at of [0, 7, 8, 4090, 4098]) {
      data[at] = NaN;
      expect(firstNonFinite({ dtype: 'F32', shape: [data.length], data })).toBe(at);
      data[at] = 0;
    }
    expect(firstNonFinite({ dtype: 'F32', shape: [data.length], data })).toBe(-1);
  });
});
