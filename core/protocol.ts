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

/** verl's DataProto as plain data; wrap it with RolloutBatch on the caller's side. */
export interface RolloutData {
  batch: Record<string, HostTensor>;
  nonTensorBatch: Record<string, unknown[]>;
  metaInfo: Record<string, unknown>;
}
