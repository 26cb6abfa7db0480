// The stochastic flow-matching steps of docs/rl-math.md ("sde": Flow-GRPO; "cps": the
// Flow-GRPO-Fast recipes) and their log-probabilities, on one sample's latents.
// Float32 semantics: every intermediate is rounded (Math.fround) where PyTorch's float32 tensor
// ops round, in the same order, so that trajectories and log-probs match a float32 PyTorch
// reference to the last bits that matter. Per-sample scalars are computed once per step.

export type StochasticType = 'sde' | 'cps';
export type SdeType = 'ode' | StochasticType;

const f = Math.fround;
/** log(sqrt(2 pi)) as PyTorch subtracts it from a float32 tensor: rounded to float32 first. */
const LOG_SQRT_2PI = f(Math.log(Math.sqrt(2 * Math.PI)));
const HALF_PI = f(Math.PI / 2);

/** One step's Gaussian transition N(mean(x, v), std^2) for one sample. */
export interface Transition {
  readonly type: StochasticType;
  /** Standard deviation of the transition (the noise scale of x_next = mean + std * eps). */
  readonly std: number;
  /** Writes the transition mean for latents x and velocity v into out (all one sample's length). */
  meanInto(x: Float32Array, v: Float32Array, out: Float32Array): void;
  /** log p(xNext | mean), averaged over every element (one number per sample and step). */
  logProb(xNext: Float32Array, mean: Float32Array): number;
  /**
   * The sampling step in one pass: out = mean(x, v) + std * eps, and its log-prob (NaN when
   * `withLogProb` is false). The same float32 operations in the same order as meanInto, addNoise
   * and logProb one after another, so the same bits, without writing and reading back the mean.
   */
  sampleInto(x: Float32Array, v: Float32Array, eps: Float32Array, out: Float32Array, withLogProb: boolean): number;
}

/**
 * The transition of step i (sigma = sigmas[i] -> sigmaNext = sigmas[i+1]) at noise level a.
 * sigma1 = sigmas[1]: the "sde" step uses it in place of sigma in 1 - sigma when sigma == 1.
 */
export function transition(type: StochasticType, sigma: number, sigmaNext: number, sigma1: number, noiseLevel: number): Transition {
  return type === 'sde' ? sdeTransition(f(sigma), f(sigmaNext), f(sigma1), f(noiseLevel)) : cpsTransition(f(sigma), f(sigmaNext), f(noiseLevel));
}

function sdeTransition(sigma: number, sigmaNext: number, sigma1: number, a: number): Transition {
  const dt = f(sigmaNext - sigma);
  const den = sigma === 1 ? sigma1 : sigma;
  const stdT = f(a * f(Math.sqrt(f(sigma / f(1 - den)))));
  const std2 = f(stdT * stdT);
  const twoSigma = f(2 * sigma);
  // mean = x * (1 + std_t^2 / (2 sigma) * dt) + v * (1 + std_t^2 (1 - sigma) / (2 sigma)) * dt
  const cx = f(1 + f(f(std2 / twoSigma) * dt));
  const cv = f(1 + f(f(std2 * f(1 - sigma)) / twoSigma));
  const std = f(stdT * f(Math.sqrt(f(-dt))));
  const twoVar = f(2 * f(std * std));
  const logStd = f(Math.log(std));
  return {
    type: 'sde',
    std,
    meanInto(x, v, out) {
      for (let k = 0; k < out.length; k++) out[k] = f(f(x[k] * cx) + f(f(v[k] * cv) * dt));
    },
    logProb(xNext, mean) {
      let sum = 0;
      for (let k = 0; k < mean.length; k++) {
        const d = f(xNext[k] - mean[k]);
        sum += f(f(f(-f(d * d) / twoVar) - logStd) - LOG_SQRT_2PI);
      }
      return f(sum / mean.length);
    },
    sampleInto(x, v, eps, out, withLogProb) {
      const n = out.length;
      if (!withLogProb) {
        for (let k = 0; k < n; k++) out[k] = f(f(f(x[k] * cx) + f(f(v[k] * cv) * dt)) + f(std * eps[k]));
        return NaN;
      }
      let sum = 0;
      for (let k = 0; k < n; k++) {
        const mean = f(f(x[k] * cx) + f(f(v[k] * cv) * dt));
        const next = f(mean + f(std * eps[k]));
        out[k] = next;
        const d = f(next - mean);
        sum += f(f(f(-f(d * d) / twoVar) - logStd) - LOG_SQRT_2PI);
      }
      return f(sum / n);
    },
  };
}

function cpsTransition(sigma: number, sigmaNext: number, a: number): Transition {
  const std = f(sigmaNext * f(Math.sin(f(a * HALF_PI))));
  const oneMinusSigma = f(1 - sigma);
  const cx0 = f(1 - sigmaNext);
  const cx1 = f(Math.sqrt(f(f(sigmaNext * sigmaNext) - f(std * std))));
  return {
    type: 'cps',
    std,
    meanInto(x, v, out) {
      for (let k = 0; k < out.length; k++) {
        const x0 = f(x[k] - f(sigma * v[k]));
        const x1 = f(x[k] + f(oneMinusSigma * v[k]));
        out[k] = f(f(x0 * cx0) + f(x1 * cx1));
      }
    },
    logProb(xNext, mean) {
      // Constants dropped, as the recipe does: -(x_next - mean)^2, averaged.
      let sum = 0;
      for (let k = 0; k < mean.length; k++) {
        const d = f(xNext[k] - mean[k]);
        sum -= f(d * d);
      }
      return f(sum / mean.length);
    },
    sampleInto(x, v, eps, out, withLogProb) {
      const n = out.length;
      let sum = 0;
      for (let k = 0; k < n; k++) {
        const x0 = f(x[k] - f(sigma * v[k]));
        const x1 = f(x[k] + f(oneMinusSigma * v[k]));
        const mean = f(f(x0 * cx0) + f(x1 * cx1));
        const next = f(mean + f(std * eps[k]));
        out[k] = next;
        const d = f(next - mean);
        sum -= f(d * d);
      }
      return withLogProb ? f(sum / n) : NaN;
    },
  };
}

/** x_next = mean + std * eps, into out. */
export function addNoise(mean: Float32Array, std: number, eps: Float32Array, out: Float32Array): void {
  for (let k = 0; k < out.length; k++) out[k] = f(mean[k] + f(std * eps[k]));
}

/** The ODE (Euler) step on one sample: x + (sigmaNext - sigma) * v; noise level 0 gives it back. */
export function eulerInto(x: Float32Array, v: Float32Array, sigma: number, sigmaNext: number, out: Float32Array): void {
  const dt = f(sigmaNext - sigma);
  for (let k = 0; k < out.length; k++) out[k] = f(x[k] + f(dt * v[k]));
}
