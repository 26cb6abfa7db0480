// plugins/sde-scheduler: stochastic steps with log-probs for RL rollouts (RL-MATH.md).
// Request option `sde: { type: 'ode' | 'sde' | 'cps', noiseLevel?, window?: { size, range? },
// windowStarts?, logProbs? }`; RPC `computeLogProbs(args)` rescoring a stored trajectory.
// Without the option (or without this plugin) core's Euler step runs.
import { definePlugin, type BatchContext, type GenerateRequest } from '../../core/public.ts';
import { sdeBatchStep } from './batch-step.ts';
import { getSdePlan, planBatch, setSdePlan } from './plan.ts';
import { parseSdeOptions, type SdeOptions } from './options.ts';
import { computeLogProbs } from './scoring.ts';

export const PLUGIN_NAME = 'sde-scheduler';
export { getSdePlan, inWindow, type SdePlan } from './plan.ts';
export { scoreArgsFromRollout } from './score-args.ts';
export type { ScoreArgs, ScoreResult } from './scoring.ts';

/** Validates each request of the batch (windowStarts is per request), then plans the batch. */
function plan(ctx: BatchContext): void {
  if (ctx.samples[0].request.sde === undefined) {
    // Every rollout says how its steps were taken: without the option, core's Euler (ODE) step.
    ctx.meta.sde_type = 'ode';
    ctx.meta.noise_level = 0;
    return;
  }
  const seen = new Set<GenerateRequest>();
  let options: SdeOptions | undefined;
  for (const s of ctx.samples) {
    if (seen.has(s.request)) continue;
    seen.add(s.request);
    options = parseSdeOptions(s.request.sde, s.request, s.requestIndex, ctx.params.steps);
  }
  const p = planBatch(ctx.samples, options!, ctx.params.steps);
  setSdePlan(ctx, p);
  ctx.recorded = {
    windowSize: p.windowSize,
    starts: p.starts,
    logProbs: p.logProbs,
    noLogProbsReason: p.type === 'ode' ? "the steps are deterministic: ask sde: { type: 'sde' | 'cps' }" : 'sde.logProbs is false',
  };
  // Everything a trainer needs to recompute the log-probs goes with the rollout.
  ctx.meta.sde_type = p.type;
  ctx.meta.noise_level = p.noiseLevel;
  if (p.starts) {
    ctx.meta.sde_window_size = p.windowSize;
    ctx.meta.sde_window_range = p.windowRange;
    ctx.perSample.sde_window_start = Array.from(p.starts);
  }
}

export default definePlugin({
  name: PLUGIN_NAME,
  apply(api) {
    const { hooks, declare } = api;
    declare.requestKey('sde');
    hooks.beforeExecute.tap(PLUGIN_NAME, plan);
    hooks.schedulerStep.tap(PLUGIN_NAME, (step) => {
      const p = getSdePlan(step.batch);
      return p && sdeBatchStep(step, p);
    });
    declare.method('computeLogProbs', (args: unknown) => computeLogProbs(api, args));
  },
});
