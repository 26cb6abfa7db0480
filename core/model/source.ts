// What a loader hands to the worker: graphs as bytes, weights by name, the manifest and tokenizer.
// Loaders (onnx folder, dummy, plugins' own) all produce this one shape.
import type { ComponentName, ModelSpec, TokenizerSpec } from './manifest.ts';
import type { WeightMap } from './weights.ts';

export interface ComponentSource {
  /** The ONNX graph; parameters are graph inputs fed from `weights`. */
  graph: Uint8Array;
  weights: WeightMap;
}

export interface ModelSource {
  spec: ModelSpec;
  tokenizer: TokenizerSpec;
  components: Partial<Record<ComponentName, ComponentSource>> & {
    text_encoder: ComponentSource;
    transformer: ComponentSource;
  };
  /** Where it came from: a folder, or "dummy:<seed>". Stamped on rollouts. */
  origin: string;
  /** Reads the checkpoint's weights again (wake after deep sleep). */
  reloadWeights(): Promise<Partial<Record<ComponentName, WeightMap>>>;
}

export interface LoadRequest {
  /** 'onnx' (a model folder) by default; plugins add formats ('dummy'). */
  format: string;
  /** Model folder, or the loader's own name for it. */
  model: string;
  /** The load format's options from the config. */
  options: Record<string, unknown>;
}
