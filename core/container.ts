// The composition root: every service of a worker is registered here, explicitly and with
// factories (no decorators, so no compiler flags for anyone importing the package), in one child
// container per worker. Disposing the container releases the worker's sessions.
import 'reflect-metadata'; // tsyringe refuses to load without a Reflect metadata polyfill
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { TOKENS, registerValue, type Token } from './tokens.ts';
import type { WorkerConfig } from './config/schema.ts';
import { createWorkerHooks } from './hooks.ts';
import { WorkerEvents } from './events.ts';
import { PromptCache } from './pipeline/prompt-cache.ts';
import { WeightStore } from './model/weights.ts';
import { DiffusionModelRunner } from './model-runner/diffusion-model-runner.ts';
import { DiffusionWorker } from './worker/diffusion-worker.ts';
import { DEFAULT_SERVICES, SERVICE_NAMES, type WorkerServices } from './services.ts';
import { Declarations } from './worker-wrapper/declarations.ts';

interface Disposable {
  dispose(): unknown;
}

/**
 * tsyringe disposes only what it constructs itself (useClass); this list, which it does construct,
 * disposes what the factories built, last built first.
 */
class BuiltByFactories {
  private readonly items: Disposable[] = [];

  add<T extends Disposable>(item: T): T {
    this.items.push(item);
    return item;
  }

  async dispose(): Promise<void> {
    for (const item of this.items.reverse()) await item.dispose();
  }
}

const BUILT = Symbol('BuiltByFactories');

/** One instance per container, built on first resolve. */
function registerScoped<T>(c: DependencyContainer, t: Token<T>, build: (r: DependencyContainer) => T): void {
  c.register<T>(t, { useFactory: instanceCachingFactory(build) });
}

/**
 * The services as the worker sees them: each read resolves its token, so a plugin that
 * overrides one (api.overrideService, which re-registers its token) before the model
 * loads is the one used.
 */
function liveServices(c: DependencyContainer): WorkerServices {
  const live = {} as WorkerServices;
  for (const name of SERVICE_NAMES) Object.defineProperty(live, name, { get: () => c.resolve(TOKENS[name]), enumerable: true });
  return live;
}

export function createWorkerContainer(
  config: WorkerConfig,
  services: Partial<WorkerServices> = {},
  parent: DependencyContainer = rootContainer,
): DependencyContainer {
  const unknown = Object.keys(services).filter((k) => !(SERVICE_NAMES as string[]).includes(k));
  if (unknown.length) throw new Error(`unknown service ${unknown.map((k) => `'${k}'`).join(', ')} (services: ${SERVICE_NAMES.join(', ')})`);
  const c = parent.createChildContainer();
  registerValue(c, TOKENS.config, config);
  registerValue(c, TOKENS.hooks, createWorkerHooks());
  registerValue(c, TOKENS.events, new WorkerEvents());
  registerValue(c, TOKENS.promptCache, new PromptCache(config.promptCacheSize));
  registerValue(c, TOKENS.weights, new WeightStore());
  registerValue(c, TOKENS.declarations, new Declarations());
  for (const name of SERVICE_NAMES) {
    const service = services[name] ?? DEFAULT_SERVICES[name];
    if (typeof service !== 'function') throw new Error(`service '${name}' must be a function, got ${typeof service}`);
    c.register(TOKENS[name], { useValue: service });
  }
  c.register(BUILT, { useClass: BuiltByFactories });
  const built = c.resolve<BuiltByFactories>(BUILT);
  const live = liveServices(c);
  registerScoped(c, TOKENS.runner, (r) => new DiffusionModelRunner(
    r.resolve(TOKENS.config), r.resolve(TOKENS.hooks), r.resolve(TOKENS.events), r.resolve(TOKENS.promptCache), live, r.resolve(TOKENS.declarations),
  ));
  registerScoped(c, TOKENS.worker, (r) => built.add(new DiffusionWorker(
    r.resolve(TOKENS.config), r.resolve(TOKENS.hooks), r.resolve(TOKENS.events), r.resolve(TOKENS.weights), r.resolve(TOKENS.runner), live, r.resolve(TOKENS.declarations),
  )));
  return c;
}
