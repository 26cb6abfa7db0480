// The scheduler step of a batch under an SDE plan: window samples take the stochastic step
// (noise from the batch's noise source, log-prob when asked), the others the Euler step.
import { type StepContext, type StepResult } from '../../core/public.ts';
import { inWindow, type SdePlan } from './plan.ts';
import { eulerInto, transition } from './sde-step.ts';

/** undefined when no sample is stochastic at this step: core's Euler step answers. */
export function sdeBatchStep(step: StepContext, plan: SdePlan): StepResult | undefined {
  if (plan.type === 'ode') return undefined;
  const { batch, index: i, sigma, sigmaNext } = step;
  const B = batch.samples.length;
  let any = false;
  for (let b = 0; b < B && !any; b++) any = inWindow(plan, b, i);
  if (!any) return undefined;
  const [C, h, w] = batch.latentShape;
  const per = C * h * w;
  const tr = transition(plan.type, sigma, sigmaNext, batch.sigmas[1], plan.noiseLevel);
  const latents = new Float32Array(B * per);
  // NaN marks samples outside their window: no transition, no log-prob.
  const logProbs = plan.logProbs ? new Float32Array(B).fill(NaN) : undefined;
  const eps = new Float32Array(per);
  for (let b = 0; b < B; b++) {
    const x = step.latents.subarray(b * per, (b + 1) * per);
    const v = step.velocity.subarray(b * per, (b + 1) * per);
    const next = latents.subarray(b * per, (b + 1) * per);
    if (!inWindow(plan, b, i)) {
      eulerInto(x, v, sigma, sigmaNext, next);
      continue;
    }
    batch.noise.step(b, i, eps);
    const lp = tr.sampleInto(x, v, eps, next, logProbs !== undefined);
    if (logProbs) logProbs[b] = lp;
  }
  return { latents, logProbs };
}
