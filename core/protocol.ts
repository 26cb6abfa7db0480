// What callers send and get back. Plain data only: it crosses a thread boundary.
import type { HostTensor } from './tensors/tensor.ts';

export interface GenerateRequest {
  prompt: string;
  /** Prompt of the unconditional CFG branch; "" by default. */
  negativePrompt?: string;
  /** Samples for this prompt (a GRPO group); the prompt is encoded once. */
  numOutputsPerPrompt?: number;
  /** Seed of the first sample; sample k gets seed + k unless `seeds` is given. */
  seed?: number;
  /** One seed per sample; overrides `seed`. */
  seeds?: number[];
  height?: number;
  width?: number;
  steps?: number;
  guidanceScale?: number;
  /** Plugin options (sde, capture, lora, ...), read by the plugin that owns the key. */
  [pluginKey: string]: unknown;
}

/**
 * The rollout's batch-first tensors by name (verl-omni's names, snake_case: they go to Python
 * trainers as they are). Core's keys are here; a plugin adds its own by declaration merging
 * (declare module 'omni-worker' { interface RolloutTensorKeys { ... } }). Any other key a
 * pipeline or plugin adds is still readable by index.
 */
export interface RolloutTensorKeys {
  /** Images, uint8 [B, 3, H, W]. */
  responses?: HostTensor;
  /** Final latents, float32 [B, C, h, w]. */
  latents_clean?: HostTensor;
  /** Text-encoder outputs of the prompt, [B, L, D] and [B, P]. */
  prompt_embeds?: HostTensor;
  pooled_prompt_embeds?: HostTensor;
  /** Of the negative prompt (the unconditional branch under CFG). */
  negative_prompt_embeds?: HostTensor;
  negative_pooled_prompt_embeds?: HostTensor;
}

export type RolloutTensors = Record<string, HostTensor> & RolloutTensorKeys;

/** Per-sample values (non_tensor_batch), one entry per sample. */
export interface RolloutSampleKeys {
  prompt?: string[];
  negative_prompt?: string[];
  /** The seed that alone fixes the sample's output. */
  seed?: number[];
}

export type RolloutSamples = Record<string, unknown[]> & RolloutSampleKeys;

/** Run data (meta_info). A plugin adds its keys by declaration merging on RolloutMetaKeys. */
export interface RolloutMetaKeys {
  /** The N + 1 sigmas of the schedule, terminal 0 included. */
  sigmas?: number[];
  steps?: number;
  guidance_scale?: number;
  height?: number;
  width?: number;
  /** pipelineName of the pipeline that ran. */
  pipeline?: string;
  /** Where the model came from. */
  model?: string;
  /** The weights version the batch ran with. */
  weights_version?: number;
}

export type RolloutMeta = Record<string, unknown> & RolloutMetaKeys;

/** verl's DataProto as plain data; wrap it with RolloutBatch on the caller's side. */
export interface RolloutData {
  batch: RolloutTensors;
  nonTensorBatch: RolloutSamples;
  metaInfo: RolloutMeta;
}
