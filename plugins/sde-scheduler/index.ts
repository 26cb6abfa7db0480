// plugins/sde-scheduler: stochastic steps with log-probs for RL rollouts (docs/rl-math.md).
// Request option `sde: { type: 'ode' | 'sde' | 'cps', noiseLevel?, window?: { size, range? },
// windowStarts?, logProbs? }`; RPC `computeLogProbs(args)` rescoring a stored trajectory.
// Without the option (or without this plugin) core's Euler step runs.
import { definePlugin, type BatchContext } from '../../core/public.ts';
import { sdeBatchStep } from './batch-step.ts';
import { getSdePlan, planBatch, recordedSteps, setSdePlan } from './plan.ts';
import { batchSdeOptions, sdeOptionsSchema } from './options.ts';
import type { z } from 'zod';
import { computeLogProbs, type ScoreArgs, type ScoreResult } from './scoring.ts';

export const PLUGIN_NAME = 'sde-scheduler';
export { getSdePlan, inWindow, type SdePlan } from './plan.ts';
export { scoreArgsFromRollout } from './score-args.ts';
export type { ScoreArgs, ScoreResult } from './scoring.ts';

declare module '../../core/public.ts' {
  interface RolloutMetaKeys {
    /** How the steps were taken: 'ode' (deterministic), 'sde' or 'cps'. */
    sde_type?: 'ode' | 'sde' | 'cps';
    noise_level?: number;
    /** With a window: its size W and the range its start was drawn in. */
    sde_window_size?: number;
    sde_window_range?: [number, number];
  }
  interface RolloutSampleKeys {
    /** With a window: each sample's first stochastic step. */
    sde_window_start?: number[];
  }
  interface GenerateRequest {
    /** Stochastic steps with log-probs (docs/rl-plugins.md). */
    sde?: z.input<typeof sdeOptionsSchema>;
  }
  interface OmniWorkerMethods {
    /** Scoring mode: the log-probs of a stored trajectory, without sampling (docs/rl-plugins.md). */
    computeLogProbs(args: ScoreArgs): ScoreResult;
  }
}

/** Plans the batch's stochastic steps (windows drawn from each sample's seed). */
function plan(ctx: BatchContext): void {
  const options = batchSdeOptions(ctx.samples, ctx.params.steps);
  if (!options) {
    // Every rollout says how its steps were taken: without the option, core's Euler (ODE) step.
    ctx.meta.sde_type = 'ode';
    ctx.meta.noise_level = 0;
    return;
  }
  const p = planBatch(ctx.samples, options, ctx.params.steps);
  setSdePlan(ctx, p);
  ctx.recorded = { ...recordedSteps(options, ctx.params.steps), starts: p.starts };
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
    // Before any batch runs: the steps this batch records, for capture plugins to size their outputs.
    hooks.planOutputs.tap(PLUGIN_NAME, (outputs, batch) => {
      const options = batchSdeOptions(batch.samples, batch.params.steps);
      return options ? { ...outputs, recorded: recordedSteps(options, batch.params.steps) } : outputs;
    });
    hooks.beforeExecute.tap(PLUGIN_NAME, plan);
    hooks.schedulerStep.tap(PLUGIN_NAME, (step) => {
      const p = getSdePlan(step.batch);
      return p && sdeBatchStep(step, p);
    });
    declare.method('computeLogProbs', (args: unknown) => computeLogProbs(api, args));
  },
});
