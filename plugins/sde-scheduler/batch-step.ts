// The scheduler step of a batch under an SDE plan: window samples take the stochastic step
// (noise from the batch's noise source, log-prob when asked), the others the Euler step.
import { stepNoise, type StepContext, type StepResult } from '../../core/public.ts';
import { inWindow, type SdePlan } from './plan.ts';
import { eulerInto, transition } from './sde-step.ts';

/** undefined when no sample is stochastic at this step: core's Euler step answers. */
export function sdeBatchStep(step: StepContext, plan: SdePlan): StepResult | undefined {
  if (plan.type === 'ode') return undefined;
  const { batch, index: i, sigma, sigmaNext } = step;
  const B = batch.samples.length;
  const stochastic: number[] = [];
  for (let b = 0; b < B; b++) if (inWindow(plan, b, i)) stochastic.push(b);
  if (!stochastic.length) return undefined;
  const [C, h, w] = batch.latentShape;
  const per = C * h * w;
  const tr = transition(plan.type, sigma, sigmaNext, batch.sigmas[1], plan.noiseLevel);
  const latents = new Float32Array(B * per);
  // NaN marks samples outside their window: no transition, no log-prob.
  const logProbs = plan.logProbs ? new Float32Array(B).fill(NaN) : undefined;
  // The step noise of every stochastic sample at once (row r: sample stochastic[r]).
  const eps = new Float32Array(stochastic.length * per);
  stepNoise(batch.noise, stochastic, i, eps, per);
  for (let b = 0, r = 0; b < B; b++) {
    const x = step.latents.subarray(b * per, (b + 1) * per);
    const v = step.velocity.subarray(b * per, (b + 1) * per);
    const next = latents.subarray(b * per, (b + 1) * per);
    if (stochastic[r] !== b) {
      eulerInto(x, v, sigma, sigmaNext, next);
      continue;
    }
    const lp = tr.sampleInto(x, v, eps.subarray(r * per, (r + 1) * per), next, logProbs !== undefined);
    if (logProbs) logProbs[b] = lp;
    r++;
  }
  return { latents, logProbs };
}
