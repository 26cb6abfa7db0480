import { describe, expect, it } from 'vitest';
import { eulerStep, flowMatchSigmas } from '../core/scheduler/flow-match.ts';
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';

describe('flow-matching schedule', () => {
  it('shifts linspace(1, 1/N, N) and appends a terminal 0', () => {
    const N = 10, shift = 3;
    const sigmas = flowMatchSigmas({ steps: N, shift });
    expect(sigmas.length).toBe(N + 1);
    expect(sigmas[0]).toBe(1);
    expect(sigmas[N]).toBe(0);
    const last = 1 / N;
    expect(sigmas[N - 1]).toBeCloseTo((shift * last) / (1 + (shift - 1) * last), 6);
    for (let i = 1; i < N; i++) expect(sigmas[i]).toBeLessThan(sigmas[i - 1]);
    // shift 1 is the plain linspace
    const plain = flowMatchSigmas({ steps: 5, shift: 1, sigmaMin: 0.2 });
    expect(Array.from(plain)).toEqual([1, 0.8, 0.6, 0.4, 0.2, 0].map(Math.fround));
    expect(() => flowMatchSigmas({ steps: 0, shift })).toThrow(/steps must be a positive integer/);
  });

  it('Euler-steps x + (sigma_next - sigma) v', () => {
    const x = Float32Array.from([1, -2, 0.5]);
    const v = Float32Array.from([0.25, 1, -4]);
    expect(Array.from(eulerStep(x, v, 0.75, 0.5))).toEqual([1 - 0.0625, -2.25, 1.5]);
  });
});

describe('seeded noise', () => {
  it('is a function of (seed, stream) alone, and roughly standard normal', () => {
    const a = new Float32Array(20000), b = new Float32Array(20000), c = new Float32Array(20000);
    fillGaussian(7, 0, a);
    fillGaussian(7, 0, b);
    fillGaussian(7, 1, c);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    // prefix property: a shorter draw is the start of a longer one (sample size never changes noise)
    const short = new Float32Array(10);
    fillGaussian(7, 0, short);
    expect(Array.from(short)).toEqual(Array.from(a.subarray(0, 10)));
  });
});
