// WorkerWrapperBase: builds a worker from its config (container, plugins, model, extension
// classes) and routes method calls by name. It runs wherever inference runs (a worker thread
// by default); the caller's side talks to it through an executor.
import type { DependencyContainer } from 'tsyringe';
import { TOKENS } from '../tokens.ts';
import { createWorkerContainer } from '../container.ts';
import type { PluginEntry, WorkerConfig } from '../config/schema.ts';
import type { WorkerHooks } from '../hooks.ts';
import type { WorkerEvents, WorkerState } from '../events.ts';
import type { ModelView, PluginRegistry, RpcMethod, WorkerPlugin } from '../plugin.ts';
import type { DiffusionWorker } from '../worker/diffusion-worker.ts';
import type { WeightStore } from '../model/weights.ts';
import { applyCoreTaps } from '../worker/core-taps.ts';
import { CORE_REQUEST_KEYS } from '../request-options.ts';
import type { Declarations } from './declarations.ts';
import { importExport, parseModuleRef } from './module-ref.ts';
import { modelView, pluginApi, resolvePlugins, type ResolvedPlugin } from './plugin-loader.ts';
import type { GenerateRequest, RolloutData } from '../protocol.ts';
import type { ExecuteMethod, WorkerStateInfo } from '../rpc.ts';
import type { WorkerServices } from '../services.ts';

export interface WrapperOptions {
  /** Built-in plugins by name (core names none itself). */
  registry?: PluginRegistry;
  /** Services that replace the defaults for this worker (core/services.ts). */
  services?: Partial<WorkerServices>;
}

/** What an extension class's constructor receives: the same views a plugin gets, and executeMethod. */
export interface ExtensionContext {
  readonly hooks: WorkerHooks;
  readonly events: WorkerEvents;
  readonly weights: WeightStore;
  readonly model: ModelView;
  readonly state: WorkerState;
  readonly executeMethod: ExecuteMethod;
}

export class WorkerWrapperBase {
  readonly declarations: Declarations;
  /** The names callable through executeMethod, sorted. */
  readonly methods = { names: (): string[] => this.declarations.names('method').sort() };
  readonly plugins: WorkerPlugin[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly container: DependencyContainer,
    readonly worker: DiffusionWorker,
    readonly hooks: WorkerHooks,
    readonly events: WorkerEvents,
    readonly config: WorkerConfig,
  ) {
    this.declarations = container.resolve(TOKENS.declarations);
  }

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
    this.declareCore();
    applyCoreTaps(this.hooks, worker);
    const entries: PluginEntry[] = config.plugins ?? Object.keys(registry);
    // Every plugin is found, its dependencies present and its options valid before any applies.
    const resolved = await resolvePlugins(entries, registry, config.baseDir ?? process.cwd());
    for (const p of resolved) await this.applyPlugin(p);
    await worker.loadModel();
    for (const ref of config.workerExtensionClasses) await this.applyExtension(ref);
  }

  private declareCore(): void {
    const { worker, declarations } = this;
    const method = (name: string, fn: RpcMethod) => declarations.declare('method', name, 'core', fn);
    method('generate', (requests: GenerateRequest[]): Promise<RolloutData> => worker.execute(requests));
    method('listMethods', () => this.methods.names());
    method('getState', (): WorkerStateInfo => ({ state: worker.state, weightsVersion: worker.weights.version, plugins: this.plugins.map((p) => p.name), model: worker.model.source.origin }));
    method('resetPromptCache', () => {
      const n = worker.runner.promptCache.size;
      worker.runner.promptCache.clear();
      return n;
    });
    for (const key of CORE_REQUEST_KEYS) declarations.declare('requestKey', key, 'core', undefined);
    declarations.declare('loadFormat', 'onnx', 'core', undefined);
    for (const state of ['loading', 'ready', 'closed']) declarations.declare('state', state, 'core', undefined);
  }

  private async applyPlugin({ plugin, options }: ResolvedPlugin): Promise<void> {
    const api = pluginApi(plugin.name, {
      container: this.container,
      worker: this.worker,
      hooks: this.hooks,
      events: this.events,
      declarations: this.declarations,
      baseDir: this.config.baseDir ?? process.cwd(),
      argsOwned: this.config.executor === 'thread',
    });
    await plugin.apply(api, options);
    this.plugins.push(plugin);
  }

  /** "module.ts#ClassName": an instance whose public methods become callable by name. */
  private async applyExtension(ref: string): Promise<void> {
    const { path, exportName } = parseModuleRef(ref);
    const cls = await importExport(path, exportName, this.config.baseDir ?? process.cwd(), 'worker extension class');
    if (typeof cls !== 'function') throw new Error(`worker extension ${ref} is not a class`);
    const { worker } = this;
    const ctx: ExtensionContext = {
      hooks: this.hooks,
      events: this.events,
      weights: worker.weights,
      get model() { return modelView(worker); },
      get state() { return worker.state; },
      executeMethod: ((name: string, ...args: unknown[]) => this.executeMethod(name, ...args)) as ExecuteMethod,
    };
    const instance = new (cls as new (ctx: ExtensionContext) => Record<string, unknown>)(ctx);
    const owner = `extension ${(cls as { name: string }).name} (${ref})`;
    for (const name of publicMethodNames(instance)) {
      this.declarations.declare('method', name, owner, (instance[name] as RpcMethod).bind(instance));
    }
  }

  async executeMethod(name: string, ...args: unknown[]): Promise<unknown> {
    if (this.closed) throw new Error('the worker is closed');
    return this.declarations.get('method', name)(...args);
  }

  /**
   * Concurrent calls share one close. It never rejects: the worker ends closed whatever a plugin
   * does, and what went wrong is reported as 'log' warnings.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    const problems: string[] = [];
    const report = (what: string) => (e: unknown) => { problems.push(`${what}: ${(e as Error)?.message ?? String(e)}`); };
    // Rollouts stop before any close hook runs: a hook may release what they use.
    await this.worker.drain('abort', { reason: 'the worker is closed' }).catch(report('rollouts in flight'));
    await this.hooks.close.promise().catch(report('a close hook threw'));
    await Promise.resolve().then(() => this.container.dispose()).catch(report('releasing the worker failed')); // disposes the DiffusionWorker: every session is released
    for (const p of problems) this.events.emit('log', { level: 'warn', message: `close: ${p}` });
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
