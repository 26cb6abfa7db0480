// computeLogProbs' arguments, checked: every error names the field. Locates each recorded
// step in the schedule (from windowStarts, or by matching allTimesteps to sigmas * 1000).
import { z } from 'zod';
import { describeZodError, didYouMean as suggest, refuseUnknownArguments, numel, type HostTensor, type ModelSpec } from '../../core/public.ts';
import { DEFAULT_NOISE_LEVEL } from './plan.ts';
import { MAX_NOISE_LEVEL } from './options.ts';
import type { StochasticType } from './sde-step.ts';

export interface ScoreArgs {
  /** [B, W+1, C, h, w] float32: the latents before the first recorded step and after each. */
  allLatents: HostTensor;
  /** [B, W] float32, sigma * 1000 of each recorded step; locates the steps in `sigmas`. */
  allTimesteps?: HostTensor;
  /** [B] first recorded step of each sample (a window rollout's non_tensor_batch.sde_window_start). */
  windowStarts?: number[];
  /** [B, L, D] and [B, P]. */
  promptEmbeds: HostTensor;
  pooledPromptEmbeds: HostTensor;
  /** Needed when guidanceScale > 1 (the unconditional branch). */
  negativePromptEmbeds?: HostTensor;
  negativePooledPromptEmbeds?: HostTensor;
  guidanceScale: number;
  sdeType: 'sde' | 'cps';
  noiseLevel?: number;
  /** The rollout's N + 1 sigmas (meta_info.sigmas). */
  sigmas: ArrayLike<number>;
  /** Plugin options applied to the scoring batches as to a rollout's (a `lora` adapter, say). */
  requestOptions?: Record<string, unknown>;
}

type F32 = HostTensor & { data: Float32Array };

/** The checked arguments: tensors as float32, every recorded step's index i (sigmas[i] -> sigmas[i+1]). */
export interface ScoreInputs {
  latents: F32;
  /** samples, recorded steps, latent shape */
  B: number;
  W: number;
  latentShape: [number, number, number];
  sigmas: Float32Array;
  stepIndices: number[][];
  embeds: F32;
  pooled: F32;
  negEmbeds?: F32;
  negPooled?: F32;
  guidanceScale: number;
  sdeType: StochasticType;
  noiseLevel: number;
  requestOptions: Record<string, unknown>;
}

/** Every argument computeLogProbs takes: any other key is a typo or a misunderstanding, refused. */
const ARG_KEYS = [
  'allLatents', 'allTimesteps', 'windowStarts', 'promptEmbeds', 'pooledPromptEmbeds', 'negativePromptEmbeds',
  'negativePooledPromptEmbeds', 'guidanceScale', 'sdeType', 'noiseLevel', 'sigmas', 'requestOptions',
] as const satisfies readonly (keyof ScoreArgs)[];

/** " (did you mean 'x'?)" when a known name is a likely typo of `key`. */
function didYouMean(key: string, known: readonly string[]): string {
  const near = suggest(key, known);
  return near ? ` (did you mean '${near}'?)` : '';
}

/** Unknown keys of the arguments and of requestOptions, refused with the likely intended name. */
function refuseUnknownKeys(args: Record<string, unknown>, keys: RequestKeys): void {
  refuseUnknownArguments('computeLogProbs', args, ARG_KEYS);
  const options = args.requestOptions;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return; // the schema says what it must be
  for (const key of Object.keys(options)) {
    if (key === 'sde') fail('requestOptions.sde: the scoring steps are given by sdeType and noiseLevel');
    if (keys.core.includes(key)) fail(`requestOptions.${key} is not a plugin option a scoring batch can take`);
    if (!keys.plugins.includes(key)) {
      const known = keys.plugins.filter((k) => k !== 'sde');
      fail(`requestOptions.${key} is no plugin's request option${didYouMean(key, known)} (this worker's: ${known.join(', ') || 'none'})`);
    }
  }
}

const scalarsSchema = z.object({
  guidanceScale: z.number().finite().min(0),
  sdeType: z.enum(['sde', 'cps']),
  // The rollout's own bound: a level no rollout could have used cannot be scored either.
  noiseLevel: z.number().finite().positive().max(MAX_NOISE_LEVEL, `must be at most ${MAX_NOISE_LEVEL}, as in a rollout's sde.noiseLevel`).optional(),
  windowStarts: z.array(z.number().int().min(0)).optional(),
  requestOptions: z.record(z.string(), z.unknown()).optional(),
}).passthrough(); // the tensors are checked by f32Arg, unknown keys by refuseUnknownKeys

export function fail(message: string): never {
  throw new Error(`computeLogProbs: ${message}`);
}

/** A float32 tensor argument of the expected rank; names the field otherwise. */
function f32Arg(args: Record<string, unknown>, name: string, rank: number): HostTensor & { data: Float32Array } {
  const t = args[name] as HostTensor | undefined;
  if (!t || typeof t !== 'object' || !Array.isArray(t.shape) || !(t.data instanceof Float32Array)) {
    fail(`${name} must be a float32 tensor {dtype: 'F32', shape, data: Float32Array}`);
  }
  if (t.dtype !== 'F32') fail(`${name} must be F32, got ${t.dtype}`);
  if (t.shape.length !== rank) fail(`${name} must have ${rank} dimensions, got shape [${t.shape}]`);
  if (t.data.length !== numel(t.shape)) fail(`${name}: shape [${t.shape}] needs ${numel(t.shape)} values, data has ${t.data.length}`);
  return t as HostTensor & { data: Float32Array };
}

/** Step index of each recorded step: from windowStarts, else by matching timesteps to sigmas, else all steps. */
function stepIndicesOf(B: number, W: number, sigmas: Float32Array, timesteps: Float32Array | undefined, starts: number[] | undefined): number[][] {
  const N = sigmas.length - 1;
  const timestepOf = (i: number) => Math.fround(sigmas[i] * 1000);
  if (starts && starts.length !== B) fail(`windowStarts has ${starts.length} entries for ${B} samples`);
  return Array.from({ length: B }, (_, b) => Array.from({ length: W }, (_, k) => {
    let i: number;
    if (starts) i = starts[b] + k;
    else if (timesteps) {
      i = -1;
      for (let j = 0; j < N && i < 0; j++) if (timestepOf(j) === timesteps[b * W + k]) i = j;
      if (i < 0) fail(`allTimesteps[${b}][${k}] = ${timesteps[b * W + k]} is no step of the schedule (sigmas * 1000)`);
    } else {
      if (W !== N) fail(`allLatents records ${W} steps of ${N}: give windowStarts or allTimesteps to locate them`);
      i = k;
    }
    if (i >= N) fail(`sample ${b}: recorded step ${k} would be step ${i}, past the last of ${N} steps`);
    if (timesteps && timestepOf(i) !== timesteps[b * W + k]) {
      fail(`allTimesteps[${b}][${k}] = ${timesteps[b * W + k]} disagrees with step ${i} (timestep ${timestepOf(i)}) of windowStarts`);
    }
    return i;
  }));
}

/** The worker's request keys: core's (a scoring batch sets those itself) and its plugins' (requestOptions). */
export interface RequestKeys {
  core: readonly string[];
  plugins: readonly string[];
}

export function parseScoreArgs(raw: unknown, spec: ModelSpec, requestKeys: RequestKeys): ScoreInputs {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('expects one argument object {allLatents, promptEmbeds, pooledPromptEmbeds, guidanceScale, sdeType, sigmas, ...}');
  const args = raw as Record<string, unknown>;
  refuseUnknownKeys(args, requestKeys);
  const scalars = scalarsSchema.safeParse(args);
  if (!scalars.success) fail(describeZodError(scalars.error));
  const { guidanceScale, sdeType, windowStarts, requestOptions = {} } = scalars.data;
  const noiseLevel = scalars.data.noiseLevel ?? DEFAULT_NOISE_LEVEL;

  const latents = f32Arg(args, 'allLatents', 5);
  const [B, slots, C, h, w] = latents.shape;
  const W = slots - 1;
  if (B < 1 || W < 1) fail(`allLatents [${latents.shape}] needs at least one sample and two recorded latents`);
  if (C !== spec.latent.channels) fail(`allLatents has ${C} channels; the model's latents have ${spec.latent.channels}`);
  if (!Array.isArray(args.sigmas) && !(args.sigmas instanceof Float32Array)) fail('sigmas must be the rollout\'s N + 1 sigmas (meta_info.sigmas)');
  const sigmas = Float32Array.from(args.sigmas as ArrayLike<number>);
  if (sigmas.length < 2) fail(`sigmas must hold N + 1 >= 2 values, got ${sigmas.length}`);
  const timesteps = args.allTimesteps === undefined ? undefined : f32Arg(args, 'allTimesteps', 2);
  if (timesteps && (timesteps.shape[0] !== B || timesteps.shape[1] !== W)) fail(`allTimesteps is [${timesteps.shape}], expected [${B}, ${W}]`);
  const stepIndices = stepIndicesOf(B, W, sigmas, timesteps?.data, windowStarts);

  const embeds = f32Arg(args, 'promptEmbeds', 3);
  const pooled = f32Arg(args, 'pooledPromptEmbeds', 2);
  const cfg = guidanceScale > 1;
  const negEmbeds = cfg ? f32Arg(args, 'negativePromptEmbeds', 3) : undefined;
  const negPooled = cfg ? f32Arg(args, 'negativePooledPromptEmbeds', 2) : undefined;
  for (const [name, t] of [['promptEmbeds', embeds], ['pooledPromptEmbeds', pooled], ['negativePromptEmbeds', negEmbeds], ['negativePooledPromptEmbeds', negPooled]] as const) {
    if (t && t.shape[0] !== B) fail(`${name} has ${t.shape[0]} rows for ${B} samples`);
  }

  return {
    latents, B, W, latentShape: [C, h, w], sigmas, stepIndices, embeds, pooled, negEmbeds, negPooled,
    guidanceScale, sdeType, noiseLevel, requestOptions,
  };
}
