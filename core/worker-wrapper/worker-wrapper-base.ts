// WorkerWrapperBase: builds a worker from its config (container, plugins, model, extension
// classes) and routes method calls by name. It runs wherever inference runs (a worker thread
// by default); the caller's side talks to it through an executor.
import type { DependencyContainer } from 'tsyringe';
import { TOKENS } from '../tokens.ts';
import { createWorkerContainer } from '../container.ts';
import type { PluginEntry, WorkerConfig } from '../config/schema.ts';
import type { WorkerHooks } from '../hooks.ts';
import type { WorkerEvents } from '../events.ts';
import type { PluginApi, PluginFactory, PluginRegistry, RpcMethod, WorkerPlugin } from '../plugin.ts';
import type { DiffusionWorker } from '../worker/diffusion-worker.ts';
import { applyCoreTaps } from '../worker/core-taps.ts';
import { MethodRegistry } from './method-registry.ts';
import { importExport, parseModuleRef } from './module-ref.ts';
import type { GenerateRequest, RolloutData } from '../protocol.ts';
import type { WorkerServices } from '../services.ts';

export interface WrapperOptions {
  /** Built-in plugins by name (core names none itself). */
  registry?: PluginRegistry;
  /** Services that replace the defaults for this worker (core/services.ts). */
  services?: Partial<WorkerServices>;
}

/** What an extension class's constructor receives. */
export interface ExtensionContext {
  readonly worker: DiffusionWorker;
  readonly hooks: WorkerHooks;
  readonly events: WorkerEvents;
  readonly config: WorkerConfig;
  readonly container: DependencyContainer;
  executeMethod(name: string, ...args: unknown[]): Promise<unknown>;
}

export class WorkerWrapperBase {
  readonly methods = new MethodRegistry();
  readonly plugins: WorkerPlugin[] = [];
  private closed = false;

  private constructor(
    readonly container: DependencyContainer,
    readonly worker: DiffusionWorker,
    readonly hooks: WorkerHooks,
    readonly events: WorkerEvents,
    readonly config: WorkerConfig,
  ) {}

  static async create(config: WorkerConfig, options: WrapperOptions = {}): Promise<WorkerWrapperBase> {
    const container = createWorkerContainer(config, options.services);
    const wrapper = new WorkerWrapperBase(
      container,
      container.resolve(TOKENS.worker),
      container.resolve(TOKENS.hooks),
      container.resolve(TOKENS.events),
      config,
    );
    try {
      await wrapper.init(options.registry ?? {});
    } catch (e) {
      await container.dispose();
      throw e;
    }
    return wrapper;
  }

  private async init(registry: PluginRegistry): Promise<void> {
    const { worker, config } = this;
    this.registerCoreMethods();
    applyCoreTaps(this.hooks, worker);
    const entries = config.plugins ?? Object.keys(registry);
    for (const entry of entries) await this.applyPlugin(entry, registry);
    await worker.loadModel();
    for (const ref of config.workerExtensionClasses) await this.applyExtension(ref);
  }

  private registerCoreMethods(): void {
    const { worker } = this;
    const core = (name: string, fn: RpcMethod) => this.methods.register(name, fn, 'core');
    core('generate', (requests: GenerateRequest[]): Promise<RolloutData> => worker.execute(requests));
    core('listMethods', () => this.methods.names());
    core('getState', () => ({ state: worker.state, weightsVersion: worker.weights.version, plugins: this.plugins.map((p) => p.name), model: worker.model.source.origin }));
    core('resetPromptCache', () => {
      const n = worker.runner.promptCache.size;
      worker.runner.promptCache.clear();
      return n;
    });
  }

  private async applyPlugin(entry: PluginEntry, registry: PluginRegistry): Promise<void> {
    const baseDir = this.config.baseDir ?? process.cwd();
    const spec = typeof entry === 'string' ? { name: entry, options: {} } : entry;
    let factory: PluginFactory;
    if (spec.name !== undefined) {
      const load = registry[spec.name];
      if (!load) throw new Error(`unknown plugin '${spec.name}' (built-in: ${Object.keys(registry).join(', ') || 'none'}; give "module" for your own)`);
      factory = await load();
    } else {
      const { path, exportName } = parseModuleRef(spec.module!, spec.export ?? 'default');
      factory = (await importExport(path, spec.export ?? exportName, baseDir, 'plugin')) as PluginFactory;
      if (typeof factory !== 'function') throw new Error(`plugin module ${spec.module} must export a factory function (options) => plugin`);
    }
    const plugin = factory(spec.options ?? {}, { baseDir });
    const owner = `plugin '${plugin.name}'`;
    const api: PluginApi = {
      hooks: this.hooks,
      events: this.events,
      config: this.config,
      container: this.container,
      worker: this.worker,
      registerMethod: (name, fn) => this.methods.register(name, fn, owner),
      registerLoadFormat: (format) => this.worker.registerLoadFormat(format),
      declareWakeTag: (tag) => {
        const existing = this.worker.wakeTags.get(tag);
        if (existing) throw new Error(`wakeUp tag '${tag}' of ${owner} is already declared by ${existing}`);
        this.worker.wakeTags.set(tag, owner);
      },
      claimRequestKey: (key) => this.worker.runner.claimRequestKey(key, owner),
    };
    await plugin.apply(api);
    this.plugins.push(plugin);
  }

  /** "module.ts#ClassName": an instance whose public methods become callable by name. */
  private async applyExtension(ref: string): Promise<void> {
    const { path, exportName } = parseModuleRef(ref);
    const cls = await importExport(path, exportName, this.config.baseDir ?? process.cwd(), 'worker extension class');
    if (typeof cls !== 'function') throw new Error(`worker extension ${ref} is not a class`);
    const ctx: ExtensionContext = {
      worker: this.worker,
      hooks: this.hooks,
      events: this.events,
      config: this.config,
      container: this.container,
      executeMethod: (name, ...args) => this.executeMethod(name, ...args),
    };
    const instance = new (cls as new (ctx: ExtensionContext) => Record<string, unknown>)(ctx);
    const owner = `extension ${(cls as { name: string }).name} (${ref})`;
    for (const name of publicMethodNames(instance)) {
      this.methods.register(name, (instance[name] as RpcMethod).bind(instance), owner);
    }
  }

  async executeMethod(name: string, ...args: unknown[]): Promise<unknown> {
    if (this.closed) throw new Error('the worker is closed');
    return this.methods.call(name, args);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.hooks.close.promise();
    await this.container.dispose(); // disposes the DiffusionWorker: every session is released
  }
}

/** Own and inherited prototype methods, except the constructor and _private ones. */
function publicMethodNames(instance: object): string[] {
  const names = new Set<string>();
  for (let p = Object.getPrototypeOf(instance); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, n);
      if (n !== 'constructor' && !n.startsWith('_') && typeof d?.value === 'function') names.add(n);
    }
  }
  return [...names];
}
