// The `sde` request option, validated against the batch's step count; errors name the field.
import { z } from 'zod';
import { optionError, type GenerateRequest, type SampleSpec } from '../../core/public.ts';

const nonNegInt = z.number().int().min(0);
export const MAX_NOISE_LEVEL = 1;

export const sdeOptionsSchema = z.object({
  type: z.enum(['ode', 'sde', 'cps']),
  /**
   * a of docs/rl-math.md; 0.7 by default for 'sde' and 'cps'. At most 1: 'cps' noise sin(a pi / 2)
   * folds back above 1, and an 'sde' step's mean turns the latents' sign near sigma = 1 from
   * a ~ 1.3 on a shift-3 schedule of 10 steps.
   */
  noiseLevel: z.number().finite().positive().max(MAX_NOISE_LEVEL, `must be at most ${MAX_NOISE_LEVEL} (above it the step's noise swamps its signal)`).optional(),
  /** W consecutive stochastic steps, their start drawn per sample in [lo, hi - W]. */
  window: z.object({
    size: z.number().int().positive(),
    range: z.tuple([nonNegInt, nonNegInt]).optional(),
  }).strict().optional(),
  /** Explicit window start of each sample of the request (replay), instead of a draw. */
  windowStarts: z.array(nonNegInt).optional(),
  /** Per-step log-probabilities; true by default for 'sde' and 'cps'. */
  logProbs: z.boolean().optional(),
}).strict();

export type SdeOptions = z.output<typeof sdeOptionsSchema>;

/** Samples of a request: numOutputsPerPrompt, or the seeds given, or 1. */
function requestSize(r: GenerateRequest): number {
  return (r.numOutputsPerPrompt as number | undefined) ?? (Array.isArray(r.seeds) ? r.seeds.length : 1);
}

/** Parses the request's `sde` option against the batch's step count; errors name the field. */
export function parseSdeOptions(raw: unknown, request: GenerateRequest, requestIndex: number, steps: number): SdeOptions {
  const fail = (field: string, problem: string): never => {
    throw new Error(`request ${requestIndex}: ${field} ${problem}`);
  };
  const parsed = sdeOptionsSchema.safeParse(raw);
  if (!parsed.success) throw optionError(requestIndex, 'sde', parsed.error);
  const o = parsed.data;
  if (o.type === 'ode') {
    if (o.noiseLevel !== undefined) fail('sde.noiseLevel', "has no effect with type 'ode' (a deterministic step)");
    if (o.window || o.windowStarts) fail('sde.window', "needs type 'sde' or 'cps' (an 'ode' rollout has no stochastic steps)");
    if (o.logProbs) fail('sde.logProbs', "needs type 'sde' or 'cps' (an ODE step has no log-probability)");
    return o;
  }
  if (o.windowStarts && !o.window) fail('sde.windowStarts', 'needs sde.window.size');
  if (o.window) {
    const { size, range } = o.window;
    if (size > steps) fail('sde.window.size', `is ${size} but the rollout has ${steps} steps`);
    if (!range && !o.windowStarts) fail('sde.window.range', 'is required unless sde.windowStarts gives each start');
    if (range) {
      const [lo, hi] = range;
      if (hi > steps) fail('sde.window.range', `[${lo}, ${hi}] ends after the last step (${steps} steps)`);
      if (hi - size < lo) fail('sde.window.range', `[${lo}, ${hi}] cannot hold a window of ${size} steps (starts are drawn in [lo, hi - size])`);
    }
    if (o.windowStarts) {
      const n = requestSize(request);
      if (o.windowStarts.length !== n) fail('sde.windowStarts', `has ${o.windowStarts.length} starts for the request's ${n} samples`);
      o.windowStarts.forEach((s, k) => {
        if (s + size > steps) fail(`sde.windowStarts[${k}]`, `= ${s}: a window of ${size} from there ends after the last step (${steps} steps)`);
        if (range && (s < range[0] || s > range[1] - size)) fail(`sde.windowStarts[${k}]`, `= ${s} is outside [${range[0]}, ${range[1] - size}] given by sde.window.range`);
      });
    }
  }
  return o;
}

/**
 * The `sde` option of a batch's samples, each request's checked (windowStarts is per request);
 * undefined when the batch does not ask for it. Core batches by plugin options, so the samples
 * of a batch share one option.
 */
export function batchSdeOptions(samples: readonly SampleSpec[], steps: number): SdeOptions | undefined {
  if (samples[0].request.sde === undefined) return undefined;
  let options: SdeOptions | undefined;
  const seen = new Set<GenerateRequest>();
  for (const s of samples) {
    if (seen.has(s.request)) continue;
    seen.add(s.request);
    options = parseSdeOptions(s.request.sde, s.request, s.requestIndex, steps);
  }
  return options;
}
