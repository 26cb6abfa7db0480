// The services a worker uses that a caller may swap, per worker: createWorker(config, { services })
// (inline executor), or a plugin's api.overrideService(name, service) before the model loads.
// Each has a default; the composition root (container.ts) registers them.
import { randomInt } from 'node:crypto';
import type { ModelSource } from './model/source.ts';
import type { TokenizerSpec } from './model/manifest.ts';
import { loadModelFolder } from './model/folder-loader.ts';
import { WordTokenizer } from './model/tokenizer.ts';
import { TextToImagePipeline } from './pipeline/text-to-image.ts';
import type { PipelineClass } from './model-runner/diffusion-model-runner.ts';

/** Prompt text to token ids of the text encoder's fixed length. */
export interface Tokenizer {
  readonly maxLength: number;
  encode(text: string): BigInt64Array;
}

export interface WorkerServices {
  /** Builds the tokenizer of a loaded model from its tokenizer spec. Default: the word-level tokenizer. */
  tokenizer: (spec: TokenizerSpec) => Tokenizer;
  /** Reads a model folder (core's loader of loadFormat 'onnx'). Default: the folder contract's reader. */
  modelFolder: (dir: string) => Promise<ModelSource>;
  /** The pipeline class a loaded model starts with (reInitPipeline swaps it later). */
  pipeline: PipelineClass;
  /** The seed of a request that gives none (returned in nonTensorBatch.seed). Default: crypto's randomInt. */
  randomSeed: () => number;
}

export const DEFAULT_SERVICES: Readonly<WorkerServices> = Object.freeze({
  tokenizer: (spec: TokenizerSpec) => new WordTokenizer(spec),
  modelFolder: loadModelFolder,
  pipeline: TextToImagePipeline,
  // Below 2^47 so that seed + k stays a safe integer for any group size.
  randomSeed: () => randomInt(0, 2 ** 47),
});

export const SERVICE_NAMES = Object.keys(DEFAULT_SERVICES) as (keyof WorkerServices)[];
