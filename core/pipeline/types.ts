// The data one batch carries through the pipeline, shared by the hooks.
import type { GenerateRequest } from '../protocol.ts';
import type { DType, HostTensor } from '../tensors/tensor.ts';
import type { WeightSet } from '../model/weights.ts';

/** One sample of a request, after expansion of numOutputsPerPrompt. */
export interface SampleSpec {
  requestIndex: number;
  /** Index of the sample inside its request (0..numOutputsPerPrompt-1). */
  outputIndex: number;
  prompt: string;
  negativePrompt: string;
  seed: number;
  request: GenerateRequest;
}

export interface SamplingParams {
  height: number;
  width: number;
  steps: number;
  guidanceScale: number;
}

/** Gaussian noise by sample and step; the default draws it from each sample's own seed. */
export interface NoiseSource {
  readonly name: string;
  /** Fills `out` with the initial latent noise of sample `b` of the batch. */
  initial(b: number, out: Float32Array): void;
  /** Fills `out` with the noise of sample `b` at denoising step `step`. */
  step(b: number, step: number, out: Float32Array): void;
}

export interface PromptEmbeddings {
  /** [B, L, D] */
  promptEmbeds: HostTensor & { data: Float32Array };
  /** [B, P] */
  pooledPromptEmbeds: HostTensor & { data: Float32Array };
}

/**
 * The steps of each sample a trainer learns from, set by a stochastic scheduler plugin and read
 * by capture plugins (so that neither needs the other).
 */
export interface RecordedSteps {
  /** Recorded steps per sample: the SDE window's size, or every step. */
  readonly windowSize: number;
  /** First recorded step of each sample; null when every step is recorded. */
  readonly starts: Int32Array | null;
  /** Whether the recorded steps are stochastic and the scheduler returns their log-probs. */
  readonly logProbs: boolean;
  /** Why log-probs are absent, for error messages ("sde.logProbs is false"). */
  readonly noLogProbsReason?: string;
}

/** A batch as planned, before any work: its samples, parameters and latent shape. */
export interface BatchPlan {
  readonly samples: readonly SampleSpec[];
  readonly params: SamplingParams;
  /** [C, h, w] of one sample's latents. */
  readonly latentShape: readonly [number, number, number];
}

/** A tensor a batch returns: its dtype and one sample's shape (the batch dimension left out). */
export interface OutputSpec {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * What one batch will return, declared before any batch runs (hooks.planOutputs): the call is
 * refused up front when its batches would return different tensors.
 */
export interface OutputPlan {
  /** Batch-first tensors by rollout key. */
  readonly tensors: Record<string, OutputSpec>;
  /** The recorded steps a stochastic scheduler plugin plans (read by capture plugins). */
  recorded?: Pick<RecordedSteps, 'windowSize' | 'logProbs' | 'noLogProbsReason'>;
}

export interface BatchContext {
  /** Unique within the worker; the batch's step and batchDone events carry it. */
  readonly batchId: number;
  readonly samples: readonly SampleSpec[];
  readonly params: SamplingParams;
  /** N + 1 sigmas, terminal 0 included. */
  readonly sigmas: Float32Array;
  /** [C, h, w] of one sample's latents. */
  readonly latentShape: readonly [number, number, number];
  noise: NoiseSource;
  /** Weights each component runs with for this batch (LoRA may swap them). */
  weights: WeightSet;
  positive?: PromptEmbeddings;
  /** Embeddings of the negative prompt (the unconditional branch under CFG). */
  negative?: PromptEmbeddings;
  /** Set by a stochastic scheduler plugin; absent: every step recorded, no log-probs. */
  recorded?: RecordedSteps;
  /** Extra batch-first tensors plugins add to the rollout (all_latents, log-probs, ...). */
  readonly outputs: Record<string, HostTensor>;
  /** Run data plugins add to the rollout's meta_info. */
  readonly meta: Record<string, unknown>;
  /** Per-sample data plugins add to non_tensor_batch. */
  readonly perSample: Record<string, unknown[]>;
  /** Abort signal: sleep({ mode: 'abort' }) and close() set it. */
  readonly signal: AbortSignal;
}

export interface StepContext {
  readonly batch: BatchContext;
  /** Step index i in 0..steps-1: from sigmas[i] to sigmas[i+1]. */
  readonly index: number;
  readonly sigma: number;
  readonly sigmaNext: number;
  /** Latents at sigma, [B, C, h, w] flattened. Not to be mutated. */
  readonly latents: Float32Array;
  /** Guided velocity at sigma, [B, C, h, w] flattened. */
  readonly velocity: Float32Array;
}

export interface StepResult {
  /** Latents at sigmaNext. */
  latents: Float32Array;
  /** Per-sample log-probability of the step (SDE samplers), [B]. */
  logProbs?: Float32Array;
  /** Mean of the transition (scoring needs it). */
  mean?: Float32Array;
}
