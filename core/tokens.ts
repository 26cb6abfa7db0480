// Typed DI tokens: a symbol branded with the type it resolves to, so that
// `container.resolve(TOKEN)` is typed (bare symbol tokens lose their type).
import type { DependencyContainer } from 'tsyringe';

export type Token<T> = symbol & { readonly __type?: T };

export function token<T>(description: string): Token<T> {
  return Symbol(description) as Token<T>;
}

export function registerValue<T>(container: DependencyContainer, t: Token<T>, value: T): void {
  container.register<T>(t, { useValue: value });
}

// ---- the worker's tokens ----
import type { WorkerConfig } from './config/schema.ts';
import type { WorkerHooks } from './hooks.ts';
import type { WorkerEvents } from './events.ts';
import type { PromptCache } from './pipeline/prompt-cache.ts';
import type { WeightStore } from './model/weights.ts';
import type { DiffusionModelRunner } from './model-runner/diffusion-model-runner.ts';
import type { DiffusionWorker } from './worker/diffusion-worker.ts';
import type { WorkerServices } from './services.ts';
import type { Declarations } from './worker-wrapper/declarations.ts';

export const TOKENS = {
  config: token<WorkerConfig>('WorkerConfig'),
  hooks: token<WorkerHooks>('WorkerHooks'),
  events: token<WorkerEvents>('WorkerEvents'),
  promptCache: token<PromptCache>('PromptCache'),
  weights: token<WeightStore>('WeightStore'),
  runner: token<DiffusionModelRunner>('DiffusionModelRunner'),
  worker: token<DiffusionWorker>('DiffusionWorker'),
  // Swappable services (core/services.ts), looked up when used.
  tokenizer: token<WorkerServices['tokenizer']>('Tokenizer'),
  modelFolder: token<WorkerServices['modelFolder']>('ModelFolderReader'),
  pipeline: token<WorkerServices['pipeline']>('PipelineClass'),
  randomSeed: token<WorkerServices['randomSeed']>('RandomSeed'),
  declarations: token<Declarations>('Declarations'),
} as const;
