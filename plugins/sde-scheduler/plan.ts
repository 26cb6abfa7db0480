// The `sde` request option, validated, and the per-batch plan it gives: step type, noise level,
// and each sample's stochastic window. Other plugins (latent capture) read the plan through
// getSdePlan(ctx), webpack's getCompilationHooks idea: a WeakMap keyed by the batch, no core change.
import { z } from 'zod';
import { streamRandom } from '../../core/pipeline/seeded-noise.ts';
import type { BatchContext, SampleSpec } from '../../core/pipeline/types.ts';
import type { GenerateRequest } from '../../core/protocol.ts';
import type { SdeType } from './sde-step.ts';
import { optionError } from './option-errors.ts';

/**
 * Stream of streamRandom that draws window starts. Streams 0..N are the sample's noise
 * (initial, then one per step); this one would need 2^31 steps to collide.
 */
export const WINDOW_STREAM = 0x7fff_0001;
export const DEFAULT_NOISE_LEVEL = 0.7;

const nonNegInt = z.number().int().min(0);

export const sdeOptionsSchema = z.object({
  type: z.enum(['ode', 'sde', 'cps']),
  /** a of RL-MATH.md; 0.7 by default for 'sde' and 'cps'. */
  noiseLevel: z.number().finite().positive().optional(),
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

export interface SdePlan {
  readonly type: SdeType;
  /** 0 for 'ode'. */
  readonly noiseLevel: number;
  readonly logProbs: boolean;
  /** Stochastic (and recorded) steps per sample: the window size, or every step. */
  readonly windowSize: number;
  readonly windowRange: readonly [number, number] | null;
  /** Per-sample first window step; null when every step is in the window. */
  readonly starts: Int32Array | null;
}

const plans = new WeakMap<BatchContext, SdePlan>();

/** The batch's SDE plan, or undefined when the sde-scheduler plugin is absent or not asked. */
export function getSdePlan(ctx: BatchContext): SdePlan | undefined {
  return plans.get(ctx);
}

export function setSdePlan(ctx: BatchContext, plan: SdePlan): void {
  plans.set(ctx, plan);
}

/** Whether step i of sample b is stochastic (and recorded). */
export function inWindow(plan: Pick<SdePlan, 'windowSize' | 'starts'>, b: number, i: number): boolean {
  if (!plan.starts) return true;
  const s = plan.starts[b];
  return i >= s && i < s + plan.windowSize;
}

/** Samples of a request: numOutputsPerPrompt, or the seeds given, or 1. */
function requestSize(r: GenerateRequest): number {
  return (r.numOutputsPerPrompt as number | undefined) ?? (Array.isArray(r.seeds) ? r.seeds.length : 1);
}

/** Window start of a sample from its seed alone: lo + uniform integer in [0, hi - size - lo]. */
export function drawWindowStart(seed: number, size: number, range: readonly [number, number]): number {
  const [lo, hi] = range;
  return lo + Math.floor(streamRandom(seed, WINDOW_STREAM)() * (hi - size - lo + 1));
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

/** The batch's plan. Every sample of a batch carries the same `sde` option (core groups by it). */
export function planBatch(samples: readonly SampleSpec[], options: SdeOptions, steps: number): SdePlan {
  if (options.type === 'ode') return { type: 'ode', noiseLevel: 0, logProbs: false, windowSize: steps, windowRange: null, starts: null };
  const window = options.window;
  let starts: Int32Array | null = null;
  if (window) {
    starts = Int32Array.from(samples, (s) => options.windowStarts?.[s.outputIndex] ?? drawWindowStart(s.seed, window.size, window.range!));
  }
  return {
    type: options.type,
    noiseLevel: options.noiseLevel ?? DEFAULT_NOISE_LEVEL,
    logProbs: options.logProbs ?? true,
    windowSize: window?.size ?? steps,
    windowRange: window?.range ?? null,
    starts,
  };
}
