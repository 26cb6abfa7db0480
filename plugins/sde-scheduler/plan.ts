// A batch's SDE plan: step type, noise level, and each sample's stochastic window, drawn from the
// sample's seed. Other plugins (latent capture) read it through getSdePlan(ctx), webpack's
// getCompilationHooks idea: a WeakMap keyed by the batch, no core change.
import { streamRandom, type BatchContext, type OutputPlan, type SampleSpec } from '../../core/public.ts';
import type { SdeOptions } from './options.ts';
import type { SdeType } from './sde-step.ts';

/**
 * Stream of streamRandom that draws window starts. Streams 0..N are the sample's noise
 * (initial, then one per step); this one would need 2^31 steps to collide.
 */
export const WINDOW_STREAM = 0x7fff_0001;
export const DEFAULT_NOISE_LEVEL = 0.7;

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

/** Window start of a sample from its seed alone: lo + uniform integer in [0, hi - size - lo]. */
export function drawWindowStart(seed: number, size: number, range: readonly [number, number]): number {
  const [lo, hi] = range;
  return lo + Math.floor(streamRandom(seed, WINDOW_STREAM)() * (hi - size - lo + 1));
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

/** The steps a batch under these options records, known before its windows are drawn. */
export function recordedSteps(options: SdeOptions, steps: number): NonNullable<OutputPlan['recorded']> {
  if (options.type === 'ode') return { windowSize: steps, logProbs: false, noLogProbsReason: "the steps are deterministic: ask sde: { type: 'sde' | 'cps' }" };
  return { windowSize: options.window?.size ?? steps, logProbs: options.logProbs ?? true, noLogProbsReason: 'sde.logProbs is false' };
}
