// The `capture` request option: which trajectory tensors the rollout returns.
import { z } from 'zod';
import { optionError } from '../../core/public.ts';

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
