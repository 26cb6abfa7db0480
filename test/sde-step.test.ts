// The pure step maths of plugins/sde-scheduler against docs/rl-math.md, re-derived here in float64.
import { describe, expect, it } from 'vitest';
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';
import { flowMatchSigmas } from '../core/scheduler/flow-match.ts';
import { addNoise, eulerInto, transition } from '../plugins/sde-scheduler/sde-step.ts';

const N = 64;
const vec = (seed: number, stream: number, n = N) => {
  const a = new Float32Array(n);
  fillGaussian(seed, stream, a);
  return a;
};
const sigmas = flowMatchSigmas({ steps: 10, shift: 3 });

/** docs/rl-math.md's "sde" step in float64, written out independently of the plugin. */
function sdeRef(x: Float32Array, v: Float32Array, eps: Float32Array, i: number, a: number) {
  const s = sigmas[i], sn = sigmas[i + 1], dt = sn - s;
  const stdT = a * Math.sqrt(s / (1 - (s === 1 ? sigmas[1] : s)));
  const mean = Array.from(x, (xk, k) => xk * (1 + (stdT ** 2 / (2 * s)) * dt) + v[k] * (1 + (stdT ** 2 * (1 - s)) / (2 * s)) * dt);
  const std = stdT * Math.sqrt(-dt);
  const next = mean.map((m, k) => m + std * eps[k]);
  const lp = next.reduce((acc, xn, k) => acc - (xn - mean[k]) ** 2 / (2 * std ** 2) - Math.log(std) - Math.log(Math.sqrt(2 * Math.PI)), 0) / N;
  return { mean, std, next, lp };
}

function cpsRef(x: Float32Array, v: Float32Array, eps: Float32Array, i: number, a: number) {
  const s = sigmas[i], sn = sigmas[i + 1];
  const std = sn * Math.sin((a * Math.PI) / 2);
  const mean = Array.from(x, (xk, k) => (xk - s * v[k]) * (1 - sn) + (xk + (1 - s) * v[k]) * Math.sqrt(sn ** 2 - std ** 2));
  const next = mean.map((m, k) => m + std * eps[k]);
  const lp = next.reduce((acc, xn, k) => acc - (xn - mean[k]) ** 2, 0) / N;
  return { mean, std, next, lp };
}

function run(type: 'sde' | 'cps', x: Float32Array, v: Float32Array, eps: Float32Array, i: number, a: number) {
  const tr = transition(type, sigmas[i], sigmas[i + 1], sigmas[1], a);
  const mean = new Float32Array(N), next = new Float32Array(N);
  tr.meanInto(x, v, mean);
  addNoise(mean, tr.std, eps, next);
  return { tr, mean, next, lp: tr.logProb(next, mean) };
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, ak, k) => Math.max(m, Math.abs(ak - b[k])), 0);

describe('sde step (Flow-GRPO)', () => {
  it('matches the float64 formula at every step, the first (sigma = 1) and last (sigma_next = 0) included', () => {
    for (let i = 0; i < 10; i++) {
      const x = vec(1, i), v = vec(2, i), eps = vec(3, i);
      const got = run('sde', x, v, eps, i, 0.7);
      const ref = sdeRef(x, v, eps, i, 0.7);
      expect(Number.isFinite(got.lp)).toBe(true);
      expect(Math.abs(got.tr.std - ref.std)).toBeLessThan(1e-6);
      expect(maxAbs(got.mean, ref.mean)).toBeLessThan(1e-5);
      expect(maxAbs(got.next, ref.next)).toBeLessThan(1e-5);
      expect(Math.abs(got.lp - ref.lp)).toBeLessThan(1e-5);
    }
  });

  it('averages the log-density over elements (one number per sample, not a sum)', () => {
    const x = vec(1, 0), v = vec(2, 0), eps = vec(3, 0);
    const tr = transition('sde', sigmas[2], sigmas[3], sigmas[1], 0.7);
    const mean = new Float32Array(N), next = new Float32Array(N);
    tr.meanInto(x, v, mean);
    addNoise(mean, tr.std, eps, next);
    const twice = (a: Float32Array) => Float32Array.from([...a, ...a]);
    expect(tr.logProb(twice(next), twice(mean))).toBeCloseTo(tr.logProb(next, mean), 6);
    // x_next == mean: the density's peak, -log(std) - log(sqrt(2 pi)).
    expect(tr.logProb(mean, mean)).toBeCloseTo(-Math.log(tr.std) - 0.5 * Math.log(2 * Math.PI), 5);
  });

  it('gives back the Euler step at noise level 0', () => {
    const x = vec(4, 0), v = vec(5, 0);
    for (const i of [0, 4, 9]) {
      const mean = new Float32Array(N), euler = new Float32Array(N);
      transition('sde', sigmas[i], sigmas[i + 1], sigmas[1], 0).meanInto(x, v, mean);
      eulerInto(x, v, sigmas[i], sigmas[i + 1], euler);
      expect(Array.from(mean)).toEqual(Array.from(euler));
    }
  });

  it('draws x_next with the transition std', () => {
    const n = 20000;
    const tr = transition('sde', sigmas[3], sigmas[4], sigmas[1], 0.7);
    const mean = new Float32Array(n), next = new Float32Array(n), eps = new Float32Array(n);
    fillGaussian(9, 1, eps);
    addNoise(mean, tr.std, eps, next);
    const sd = Math.sqrt(next.reduce((s, d) => s + d * d, 0) / n);
    expect(sd / tr.std).toBeGreaterThan(0.97);
    expect(sd / tr.std).toBeLessThan(1.03);
  });
});

describe('cps step', () => {
  it('matches the float64 formula, log-prob with constants dropped', () => {
    for (let i = 0; i < 9; i++) {
      const x = vec(1, i), v = vec(2, i), eps = vec(3, i);
      const got = run('cps', x, v, eps, i, 0.7);
      const ref = cpsRef(x, v, eps, i, 0.7);
      expect(Math.abs(got.tr.std - ref.std)).toBeLessThan(1e-6);
      expect(maxAbs(got.mean, ref.mean)).toBeLessThan(1e-5);
      expect(Math.abs(got.lp - ref.lp)).toBeLessThan(1e-5);
      expect(got.lp).toBeLessThan(0);
    }
  });

  it('lands on the predicted clean sample x - sigma v at the last step, noise-free', () => {
    const x = vec(1, 0), v = vec(2, 0), eps = vec(3, 0);
    const got = run('cps', x, v, eps, 9, 0.7);
    expect(got.tr.std).toBe(0);
    expect(maxAbs(got.next, Array.from(x, (xk, k) => xk - sigmas[9] * v[k]))).toBeLessThan(1e-6);
    expect(got.lp === 0).toBe(true); // -0 or 0
  });
});
