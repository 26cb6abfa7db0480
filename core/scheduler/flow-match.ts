// Rectified-flow sigma schedule and the Euler (ODE) step (docs/rl-math.md).

export interface ScheduleOptions {
  steps: number;
  /** Static timestep shift s: sigma' = s*sigma / (1 + (s-1)*sigma). */
  shift: number;
  /** Last sigma before the terminal 0; 1/steps by default. */
  sigmaMin?: number;
}

/** N + 1 float32 sigmas: linspace(1, sigmaMin, N), shifted, then a terminal 0. */
export function flowMatchSigmas({ steps, shift, sigmaMin }: ScheduleOptions): Float32Array {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  const lo = sigmaMin ?? 1 / steps;
  const sigmas = new Float32Array(steps + 1);
  // numpy.linspace's arithmetic (step = (stop - start) / (n - 1), last value exactly stop), so
  // that the float32 sigmas match a Python reference bit for bit.
  const step = steps === 1 ? 0 : (lo - 1) / (steps - 1);
  for (let i = 0; i < steps; i++) {
    const s = steps > 1 && i === steps - 1 ? lo : i * step + 1;
    sigmas[i] = (shift * s) / (1 + (shift - 1) * s);
  }
  sigmas[steps] = 0;
  return sigmas;
}

/** x_next = x + (sigma_next - sigma) * v, in float32. */
export function eulerStep(latents: Float32Array, velocity: Float32Array, sigma: number, sigmaNext: number): Float32Array {
  const dt = Math.fround(sigmaNext - sigma);
  const out = new Float32Array(latents.length);
  for (let i = 0; i < out.length; i++) out[i] = latents[i] + Math.fround(dt * velocity[i]);
  return out;
}
