// Scoring mode: the log-probs of a stored trajectory, without sampling (the trainer's
// recomputation). The transformer runs on the stored latents through the current pipeline's
// predictVelocity (CFG as in the rollout); the transition of each recorded step is the rollout's,
// so on the rollout's own trajectory and weights the log-probs come back bit for bit.
import { z } from 'zod';
import type { DiffusionWorker } from '../../core/worker/diffusion-worker.ts';
import type { WorkerHooks } from '../../core/hooks.ts';
import type { BatchContext, NoiseSource, SampleSpec } from '../../core/pipeline/types.ts';
import { f32, numel, type HostTensor } from '../../core/tensors/tensor.ts';
import { describeIssues } from './option-errors.ts';
import { DEFAULT_NOISE_LEVEL } from './plan.ts';
import { transition } from './sde-step.ts';

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

export interface ScoreResult {
  /** [B, W] float32. */
  logProbs: HostTensor;
  /** Step index i of each recorded step (from sigmas[i] to sigmas[i+1]), [B][W]. */
  stepIndices: number[][];
}

const scalarsSchema = z.object({
  guidanceScale: z.number().finite().min(0),
  sdeType: z.enum(['sde', 'cps']),
  noiseLevel: z.number().finite().positive().optional(),
  windowStarts: z.array(z.number().int().min(0)).optional(),
  requestOptions: z.record(z.string(), z.unknown()).optional(),
}).passthrough();

const CORE_REQUEST_KEYS = ['prompt', 'negativePrompt', 'numOutputsPerPrompt', 'seed', 'seeds', 'height', 'width', 'steps', 'guidanceScale', 'sde', 'capture'];

function fail(message: string): never {
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

/** Rows `rows` of a [B, ...] tensor, or of slot k of a [B, S, ...] tensor, as one contiguous block. */
function gather(src: Float32Array, rows: readonly number[], rowSize: number, slots = 1, slot = 0): Float32Array {
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((b, r) => out.set(src.subarray((b * slots + slot) * rowSize, (b * slots + slot + 1) * rowSize), r * rowSize));
  return out;
}

const NO_NOISE: NoiseSource = {
  name: 'scoring',
  initial: () => fail('scoring draws no noise'),
  step: () => fail('scoring draws no noise'),
};

export async function computeLogProbs(worker: DiffusionWorker, hooks: WorkerHooks, raw: unknown): Promise<ScoreResult> {
  if (!raw || typeof raw !== 'object') fail('expects one argument object {allLatents, promptEmbeds, pooledPromptEmbeds, guidanceScale, sdeType, sigmas, ...}');
  const args = raw as Record<string, unknown>;
  const scalars = scalarsSchema.safeParse(args);
  if (!scalars.success) fail(describeIssues('', scalars.error));
  const { guidanceScale, sdeType, windowStarts, requestOptions = {} } = scalars.data;
  const noiseLevel = scalars.data.noiseLevel ?? DEFAULT_NOISE_LEVEL;
  for (const key of CORE_REQUEST_KEYS) if (key in requestOptions) fail(`requestOptions.${key} is not a plugin option a scoring batch can take`);

  const model = worker.model;
  const latents = f32Arg(args, 'allLatents', 5);
  const [B, slots, C, h, w] = latents.shape;
  const W = slots - 1;
  if (B < 1 || W < 1) fail(`allLatents [${latents.shape}] needs at least one sample and two recorded latents`);
  if (C !== model.spec.latent.channels) fail(`allLatents has ${C} channels; the model's latents have ${model.spec.latent.channels}`);
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

  const per = C * h * w;
  const [, L, D] = embeds.shape;
  const P = pooled.shape[1];
  const down = model.spec.latent.downscale;
  const logProbs = new Float32Array(B * W);
  const pipeline = worker.runner.pipeline;
  for (let k = 0; k < W; k++) {
    // Samples at the same step run together; rows are independent of their batch-mates.
    const groups = new Map<number, number[]>();
    stepIndices.forEach((idx, b) => groups.set(idx[k], [...(groups.get(idx[k]) ?? []), b]));
    for (const [i, rows] of groups) {
      const samples: SampleSpec[] = rows.map((b) => ({ requestIndex: 0, outputIndex: b, prompt: '', negativePrompt: '', seed: 0, request: { prompt: '', ...requestOptions } }));
      const ctx: BatchContext = {
        samples,
        params: { height: h * down, width: w * down, steps: sigmas.length - 1, guidanceScale },
        sigmas,
        latentShape: [C, h, w],
        noise: NO_NOISE,
        weights: model.weights.set,
        positive: { promptEmbeds: f32([rows.length, L, D], gather(embeds.data, rows, L * D)), pooledPromptEmbeds: f32([rows.length, P], gather(pooled.data, rows, P)) },
        negative: cfg ? {
          promptEmbeds: f32([rows.length, L, D], gather(negEmbeds!.data, rows, L * D)),
          pooledPromptEmbeds: f32([rows.length, P], gather(negPooled!.data, rows, P)),
        } : undefined,
        outputs: {},
        meta: {},
        perSample: {},
        signal: new AbortController().signal,
      };
      // As for a rollout: plugins may refuse (asleep) or pick weights (an adapter) for the batch.
      await hooks.beforeExecute.promise(ctx);
      const x = gather(latents.data, rows, per, slots, k);
      const v = await pipeline.predictVelocity(ctx, x, i);
      const tr = transition(sdeType, sigmas[i], sigmas[i + 1], sigmas[1], noiseLevel);
      const mean = new Float32Array(per);
      rows.forEach((b, r) => {
        tr.meanInto(x.subarray(r * per, (r + 1) * per), v.subarray(r * per, (r + 1) * per), mean);
        const next = latents.data.subarray((b * slots + k + 1) * per, (b * slots + k + 2) * per);
        logProbs[b * W + k] = tr.logProb(next, mean);
      });
    }
  }
  return { logProbs: f32([B, W], logProbs), stepIndices };
}
