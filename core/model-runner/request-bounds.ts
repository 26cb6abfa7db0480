// A request's sampling parameters and sample count, checked against the config's limits and the
// model's input shapes before any work: every error names the request, the field and the value.
import type { WorkerConfig } from '../config/schema.ts';
import type { GenerateRequest } from '../protocol.ts';
import type { SamplingParams } from '../pipeline/types.ts';
import { showValue } from '../validation.ts';

export type Limits = WorkerConfig['limits'];

/** What bounds a request: the config's limits and what the model's graphs accept. */
export interface RequestBounds {
  readonly limits: Limits;
  /** Height and width must be multiples of it (the latent downscale). */
  readonly downscale: number;
  /** The image size the model's graphs fix (static dimensions), where they fix one. */
  readonly fixedHeight?: number;
  readonly fixedWidth?: number;
}

/** Generous bounds for planning without a model (tests of the planner alone). */
export const UNBOUNDED: RequestBounds = {
  limits: { maxSamplesPerCall: Number.MAX_SAFE_INTEGER, maxSteps: Number.MAX_SAFE_INTEGER, maxHeight: Number.MAX_SAFE_INTEGER, maxWidth: Number.MAX_SAFE_INTEGER, maxPixels: Number.MAX_SAFE_INTEGER },
  downscale: 1,
};

export function fail(i: number, field: string, problem: string): never {
  throw new Error(`request ${i}: ${field} ${problem}`);
}

function positiveInt(i: number, field: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(i, field, `must be a positive integer, got ${showValue(v)}`);
  return v;
}

/** Samples of request i: numOutputsPerPrompt, the seeds given, or 1; seeds checked. */
export function sampleCount(i: number, r: GenerateRequest, limits: Limits): number {
  const given = positiveInt(i, 'numOutputsPerPrompt', r.numOutputsPerPrompt);
  if (given !== undefined && given > limits.maxSamplesPerCall) fail(i, 'numOutputsPerPrompt', `= ${given} is over limits.maxSamplesPerCall (${limits.maxSamplesPerCall})`);
  if (r.seeds !== undefined) {
    if (!Array.isArray(r.seeds)) fail(i, 'seeds', `must be an array of seeds, got ${showValue(r.seeds)}`);
    if (r.seeds.length === 0) fail(i, 'seeds', 'is empty: give one seed per sample, or leave it out');
    if (given !== undefined && r.seeds.length !== given) fail(i, 'seeds', `has ${r.seeds.length} seeds for numOutputsPerPrompt ${given}`);
    if (r.seeds.length > limits.maxSamplesPerCall) fail(i, 'seeds', `has ${r.seeds.length} seeds, over limits.maxSamplesPerCall (${limits.maxSamplesPerCall})`);
    (r.seeds as unknown[]).forEach((s, k) => {
      if (!Number.isSafeInteger(s) || (s as number) < 0) fail(i, `seeds[${k}]`, `must be a non-negative integer, got ${showValue(s)}`);
    });
  }
  const n = given ?? r.seeds?.length ?? 1;
  if (r.seed !== undefined) {
    if (!Number.isSafeInteger(r.seed) || r.seed < 0) fail(i, 'seed', `must be a non-negative integer, got ${showValue(r.seed)}`);
    // Sample k gets seed + k: past 2^53 - 1 consecutive seeds round to the same number.
    if (r.seeds === undefined && r.seed + (n - 1) > Number.MAX_SAFE_INTEGER) {
      fail(i, 'seed', `= ${r.seed} with ${n} samples needs seeds up to ${r.seed} + ${n - 1}, past 2^53 - 1 where they would repeat`);
    }
  }
  return n;
}

/** The request's sampling parameters (defaults filled in), within the limits and the model's shapes. */
export function samplingParams(i: number, r: GenerateRequest, defaults: SamplingParams, bounds: RequestBounds): SamplingParams {
  const { limits } = bounds;
  if (r.guidanceScale !== undefined && (typeof r.guidanceScale !== 'number' || !Number.isFinite(r.guidanceScale) || r.guidanceScale < 0)) {
    fail(i, 'guidanceScale', `must be a finite number >= 0, got ${showValue(r.guidanceScale)}`);
  }
  // The graphs take it as float32: past float32's range it would reach them as Infinity.
  if (r.guidanceScale !== undefined && !Number.isFinite(Math.fround(r.guidanceScale))) {
    fail(i, 'guidanceScale', `= ${r.guidanceScale} is beyond float32's range (3.4e38), which the model's graphs compute in`);
  }
  const p: SamplingParams = {
    height: positiveInt(i, 'height', r.height) ?? defaults.height,
    width: positiveInt(i, 'width', r.width) ?? defaults.width,
    steps: positiveInt(i, 'steps', r.steps) ?? defaults.steps,
    guidanceScale: r.guidanceScale ?? defaults.guidanceScale,
  };
  // A value from the defaults is named as such: the fix is then in the config, not the request.
  const named = (field: 'height' | 'width' | 'steps') => `${field} ${p[field]}${r[field] === undefined ? ' (the default)' : ''}`;
  const refuse = (field: 'height' | 'width' | 'steps', problem: string): never => {
    throw new Error(`request ${i}: ${named(field)} ${problem}`);
  };
  if (p.steps > limits.maxSteps) refuse('steps', `is over limits.maxSteps (${limits.maxSteps})`);
  for (const [field, max, fixed] of [['height', limits.maxHeight, bounds.fixedHeight], ['width', limits.maxWidth, bounds.fixedWidth]] as const) {
    if (p[field] > max) refuse(field, `is over limits.max${field === 'height' ? 'Height' : 'Width'} (${max})`);
    if (p[field] % bounds.downscale) refuse(field, `is not a multiple of ${bounds.downscale}, the model's latent downscale`);
    if (fixed !== undefined && p[field] !== fixed) refuse(field, `does not fit the model: its graphs take images of ${bounds.fixedHeight ?? 'any'}x${bounds.fixedWidth ?? 'any'} (height x width) only`);
  }
  if (p.height * p.width > limits.maxPixels) {
    throw new Error(`request ${i}: ${named('height')} x ${named('width')} = ${p.height * p.width} pixels is over limits.maxPixels (${limits.maxPixels})`);
  }
  return p;
}
