// A model ready to run: sessions per component, the tokenizer, the manifest and the weights.
import type { ComponentName, ModelSpec } from './manifest.ts';
import type { OnnxComponent } from './onnx-component.ts';
import type { Tokenizer } from '../services.ts';
import type { WeightStore } from './weights.ts';
import type { ModelSource } from './source.ts';

export interface LoadedModel {
  readonly spec: ModelSpec;
  readonly tokenizer: Tokenizer;
  readonly components: Partial<Record<ComponentName, OnnxComponent>> & {
    readonly text_encoder: OnnxComponent;
    readonly transformer: OnnxComponent;
  };
  readonly weights: WeightStore;
  /** Origin, graphs and reloadWeights; its weight maps are empty (the store holds the weights). */
  readonly source: ModelSource;
}
