// Finds the config's plugins, checks them as a whole (unique names, dependencies present,
// options valid against each plugin's schema) before any applies, and builds each one's PluginApi.
import type { PluginEntry } from '../config/schema.ts';
import type { WorkerHooks } from '../hooks.ts';
import type { WorkerEvents, WorkerState } from '../events.ts';
import type { ModelView, PluginApi, PluginRegistry, RpcMethod, WorkerPlugin } from '../plugin.ts';
import type { DiffusionWorker } from '../worker/diffusion-worker.ts';
import { parseOrThrow } from '../validation.ts';
import type { Declarations } from './declarations.ts';
import type { DependencyContainer } from 'tsyringe';
import { TOKENS } from '../tokens.ts';
import { SERVICE_NAMES } from '../services.ts';
import { importExport, parseModuleRef } from './module-ref.ts';

export interface ResolvedPlugin {
  plugin: WorkerPlugin;
  /** The options after the plugin's schema: defaults filled in. */
  options: unknown;
}

async function definitionOf(entry: PluginEntry, registry: PluginRegistry, baseDir: string): Promise<{ plugin: WorkerPlugin; options: Record<string, unknown> }> {
  const spec = typeof entry === 'string' ? { name: entry, options: {} } : entry;
  let plugin: unknown;
  let where: string;
  if (spec.name !== undefined) {
    const load = registry[spec.name];
    if (!load) throw new Error(`unknown plugin '${spec.name}' (built-in: ${Object.keys(registry).join(', ') || 'none'}; give "module" for your own)`);
    plugin = await load();
    where = `built-in plugin '${spec.name}'`;
  } else {
    const { path, exportName } = parseModuleRef(spec.module!, spec.export ?? 'default');
    plugin = await importExport(path, spec.export ?? exportName, baseDir, 'plugin');
    where = `plugin module ${spec.module}`;
  }
  const p = plugin as Partial<WorkerPlugin> | null;
  if (!p || typeof p !== 'object' || typeof p.name !== 'string' || !p.name || typeof p.apply !== 'function') {
    throw new Error(`${where} must export a plugin definition { name, apply(api, options) } (see definePlugin), got ${typeof plugin === 'function' ? 'a function' : JSON.stringify(plugin) ?? typeof plugin}`);
  }
  return { plugin: p as WorkerPlugin, options: spec.options ?? {} };
}

export async function resolvePlugins(entries: readonly PluginEntry[], registry: PluginRegistry, baseDir: string): Promise<ResolvedPlugin[]> {
  const found = [];
  for (const entry of entries) found.push(await definitionOf(entry, registry, baseDir));
  const names = found.map((f) => f.plugin.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) throw new Error(`plugin '${n}' is listed twice (entries ${names.indexOf(n)} and ${i} of the plugin list)`);
  });
  for (const { plugin } of found) {
    const missing = (plugin.dependencies ?? []).filter((d) => !names.includes(d));
    if (missing.length) {
      throw new Error(`plugin '${plugin.name}' needs ${missing.map((m) => `'${m}'`).join(', ')}, missing from the plugin list (${names.join(', ')})`);
    }
  }
  return found.map(({ plugin, options }) => {
    const where = `plugin '${plugin.name}'`;
    if (plugin.optionsSchema) return { plugin, options: parseOrThrow(plugin.optionsSchema, options, where, 'options') };
    const keys = Object.keys(options);
    if (keys.length) throw new Error(`${where}: invalid options: it takes none, got ${keys.join(', ')}`);
    return { plugin, options: {} };
  });
}

export function modelView(worker: DiffusionWorker): ModelView {
  const { spec, source, tokenizer } = worker.model;
  return { spec, source, tokenizer };
}

export interface ApiSources {
  container: DependencyContainer;
  worker: DiffusionWorker;
  hooks: WorkerHooks;
  events: WorkerEvents;
  declarations: Declarations;
  baseDir: string;
  argsOwned: boolean;
}

/** The one plugin's view of the worker: what it may read and the capabilities it may use. */
export function pluginApi(name: string, s: ApiSources): PluginApi {
  const owner = `plugin '${name}'`;
  const { worker, declarations } = s;
  const components = () => worker.componentsList;
  return Object.freeze({
    name,
    baseDir: s.baseDir,
    hooks: s.hooks,
    events: s.events,
    declare: Object.freeze({
      method: (method: string, fn: RpcMethod) => {
        if (typeof fn !== 'function') throw new Error(`method '${method}' of ${owner} is not a function`);
        declarations.declare('method', method, owner, fn);
      },
      requestKey: (key: string) => declarations.declare('requestKey', key, owner, undefined),
      loadFormat: (format: string) => declarations.declare('loadFormat', format, owner, undefined),
      wakeTag: (tag: string) => declarations.declare('wakeTag', tag, owner, undefined),
      state: (state: string) => declarations.declare('state', state, owner, undefined),
    }),
    declared: Object.freeze({
      names: declarations.names.bind(declarations),
      has: declarations.has.bind(declarations),
      ownerOf: declarations.ownerOf.bind(declarations),
    }),
    weights: worker.weights,
    get model() { return modelView(worker); },
    argsOwned: s.argsOwned,
    state: Object.freeze({
      get current() { return worker.state; },
      set(state: WorkerState, detail?: string) {
        if (state !== 'ready' && declarations.ownerOf('state', state) !== owner) {
          throw new Error(`${owner} sets worker state '${state}', which it has not declared (api.declare.state)${declarations.has('state', state) ? `; it belongs to ${declarations.ownerOf('state', state)}` : ''}`);
        }
        worker.setState(state, detail);
      },
    }),
    sessions: Object.freeze({
      get openCount() { return components().filter((c) => c.isOpen).length; },
      get total() { return components().length; },
      openAll: () => worker.openSessions(),
      releaseAll: () => worker.releaseSessions(),
    }),
    overrideService: (service, value) => {
      if (!SERVICE_NAMES.includes(service)) throw new Error(`${owner} overrides unknown service '${String(service)}' (services: ${SERVICE_NAMES.join(', ')})`);
      if (typeof value !== 'function') throw new Error(`${owner}: service '${service}' must be a function, got ${typeof value}`);
      s.container.register(TOKENS[service], { useValue: value });
    },
    drainRollouts: (mode: 'wait' | 'abort', reason = `aborted by plugin '${name}'`) => worker.drain(mode, { reason }),
    runInFlight: (work) => worker.runInFlight(work),
    pipeline: Object.freeze({
      get current() { return worker.runner.pipeline; },
      swap: (cls, options = {}) => worker.runner.setPipeline(cls, options),
    } satisfies PluginApi['pipeline']),
  } satisfies PluginApi);
}
