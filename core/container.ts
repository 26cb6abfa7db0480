// The composition root: every service of a worker is registered here, explicitly, in one
// child container per worker. Disposing the container releases the worker's sessions.
import 'reflect-metadata';
import { container as rootContainer, Lifecycle, type DependencyContainer } from 'tsyringe';
import { TOKENS, registerValue } from './tokens.ts';
import type { WorkerConfig } from './config/schema.ts';
import { createWorkerHooks } from './hooks.ts';
import { WorkerEvents } from './events.ts';
import { PromptCache } from './pipeline/prompt-cache.ts';
import { WeightStore } from './model/weights.ts';
import { DiffusionModelRunner } from './model-runner/diffusion-model-runner.ts';
import { DiffusionWorker } from './worker/diffusion-worker.ts';

export function createWorkerContainer(config: WorkerConfig, parent: DependencyContainer = rootContainer): DependencyContainer {
  const c = parent.createChildContainer();
  registerValue(c, TOKENS.config, config);
  registerValue(c, TOKENS.hooks, createWorkerHooks());
  registerValue(c, TOKENS.events, new WorkerEvents());
  registerValue(c, TOKENS.promptCache, new PromptCache(config.promptCacheSize));
  registerValue(c, TOKENS.weights, new WeightStore());
  c.register(TOKENS.runner, { useClass: DiffusionModelRunner }, { lifecycle: Lifecycle.ContainerScoped });
  c.register(TOKENS.worker, { useClass: DiffusionWorker }, { lifecycle: Lifecycle.ContainerScoped });
  return c;
}
