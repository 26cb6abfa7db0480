import { describe, expect, it } from 'vitest';
import { concatRows, f32, sliceRows, tensor } from '../core/tensors/tensor.ts';

describe('host tensors', () => {
  it('rejects data whose length does not match the shape', () => {
    expect(() => tensor('F32', [2, 3], new Float32Array(5))).toThrow(/needs 6 elements, got 5/);
  });
  it('slices rows as views and concatenates them back', () => {
    const t = f32([3, 2], Float32Array.from([1, 2, 3, 4, 5, 6]));
    const mid = sliceRows(t, 1, 2);
    expect(Array.from(mid.data)).toEqual([3, 4]);
    expect(mid.data.buffer).toBe(t.data.buffer);
    const back = concatRows([sliceRows(t, 0, 1), sliceRows(t, 1, 3)]);
    expect(Array.from(back.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => concatRows([t, f32([1, 3])])).toThrow(/does not match/);
  });
});
