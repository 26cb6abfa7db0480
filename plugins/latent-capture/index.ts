// plugins/latent-capture: request option `capture: { latents?, timesteps?, logProbs?, promptEmbeds? }`
// adds all_latents, all_timesteps and rollout_log_probs to the rollout (only what is asked), and
// drops the prompt embeddings when promptEmbeds is false. Recorded steps follow ctx.recorded, set by
// sde-scheduler (a dependency: log-probs come from its stochastic steps); without an sde option
// every step is recorded.
import { definePlugin, tapOptions, type BatchContext, type HostTensor } from '../../core/public.ts';
import type { z } from 'zod';
import { captureOptionsSchema, EMBEDDING_KEYS, parseCaptureOptions, plannedCaptureOutputs, type CaptureOptions } from './options.ts';
import { TrajectoryRecorder } from './recorder.ts';

export const PLUGIN_NAME = 'latent-capture';

declare module '../../core/public.ts' {
  interface GenerateRequest {
    /** Which trajectory tensors the rollout returns. */
    capture?: z.input<typeof captureOptionsSchema>;
  }
  interface RolloutTensorKeys {
    /** [B, W+1, C, h, w]: the latents before the first recorded step and after each (capture.latents). */
    all_latents?: HostTensor;
    /** [B, W]: sigma * 1000 of each recorded step (capture.timesteps). */
    all_timesteps?: HostTensor;
    /** [B, W]: each recorded step's log-probability (capture.logProbs). */
    rollout_log_probs?: HostTensor;
  }
}

export default definePlugin({
  name: PLUGIN_NAME,
  dependencies: ['sde-scheduler'],
  apply({ hooks, declare }) {
    const recorders = new WeakMap<BatchContext, TrajectoryRecorder>();
    const options = new WeakMap<BatchContext, CaptureOptions>();
    declare.requestKey('capture');
    // 'post': after the SDE plugin has declared (planOutputs) or planned (beforeExecute) the
    // batch's recorded steps. planOutputs refuses capture.logProbs without log-probs up front.
    hooks.planOutputs.tap(tapOptions(PLUGIN_NAME, 'post'), plannedCaptureOutputs);
    hooks.beforeExecute.tap(tapOptions(PLUGIN_NAME, 'post'), (ctx) => {
      const first = ctx.samples[0];
      if (first.request.capture === undefined) return;
      const o = parseCaptureOptions(first.request.capture, first.requestIndex);
      const plan = ctx.recorded;
      options.set(ctx, o);
      if (o.latents || o.timesteps || o.logProbs) {
        recorders.set(ctx, new TrajectoryRecorder(ctx, o, plan ?? { windowSize: ctx.params.steps, starts: null }));
      }
    });
    hooks.afterStep.tap(PLUGIN_NAME, (step, result) => recorders.get(step.batch)?.afterStep(step, result));
    hooks.afterExecute.tap(PLUGIN_NAME, (rollout, ctx) => {
      if (options.get(ctx)?.promptEmbeds !== false) return rollout;
      const batch = { ...rollout.batch };
      for (const key of EMBEDDING_KEYS) delete batch[key];
      return { ...rollout, batch };
    });
  },
});
