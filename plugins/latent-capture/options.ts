// The `capture` request option: which trajectory tensors the rollout returns.
import { z } from 'zod';
import { optionError, type BatchPlan, type OutputPlan, type OutputSpec } from '../../core/public.ts';

export const captureOptionsSchema = z.object({
  /** all_latents [B, W+1, C, h, w]: before the first recorded step and after each. */
  latents: z.boolean().default(false),
  /** all_timesteps [B, W]: sigma * 1000 of each recorded step. */
  timesteps: z.boolean().default(false),
  /** rollout_log_probs [B, W]: needs sde.type 'sde' or 'cps'. */
  logProbs: z.boolean().default(false),
  /** prompt_embeds, pooled_prompt_embeds and their negatives (core returns them; false drops them). */
  promptEmbeds: z.boolean().default(true),
}).strict();

export type CaptureOptions = z.output<typeof captureOptionsSchema>;

export function parseCaptureOptions(raw: unknown, requestIndex: number): CaptureOptions {
  const parsed = captureOptionsSchema.safeParse(raw);
  if (!parsed.success) throw optionError(requestIndex, 'capture', parsed.error);
  return parsed.data;
}

/** The tensors a capture option adds to (or, for promptEmbeds: false, drops from) a batch's outputs. */
export function plannedCaptureOutputs(outputs: OutputPlan, batch: BatchPlan): OutputPlan {
  const first = batch.samples[0];
  if (first.request.capture === undefined) return outputs;
  const o = parseCaptureOptions(first.request.capture, first.requestIndex);
  const recorded = outputs.recorded;
  if (o.logProbs && !recorded?.logProbs) {
    const why = recorded?.noLogProbsReason ?? "the steps are deterministic: ask sde: { type: 'sde' | 'cps' }";
    throw new Error(`request ${first.requestIndex}: capture.logProbs needs per-step log-probs, but ${why}`);
  }
  const W = recorded?.windowSize ?? batch.params.steps;
  const tensors: Record<string, OutputSpec> = { ...outputs.tensors };
  if (o.latents) tensors.all_latents = { dtype: 'F32', shape: [W + 1, ...batch.latentShape] };
  if (o.timesteps) tensors.all_timesteps = { dtype: 'F32', shape: [W] };
  if (o.logProbs) tensors.rollout_log_probs = { dtype: 'F32', shape: [W] };
  if (!o.promptEmbeds) for (const key of EMBEDDING_KEYS) delete tensors[key];
  return { ...outputs, tensors };
}

export const EMBEDDING_KEYS = ['prompt_embeds', 'pooled_prompt_embeds', 'negative_prompt_embeds', 'negative_pooled_prompt_embeds'];
