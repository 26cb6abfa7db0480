// A plugin is a definition: its name, the plugins it needs, the schema of its options and
// apply(api, options) (Fastify's plugin metadata, webpack's apply). Plugins see only PluginApi:
// hooks, events, the declarations registry, the weight store, state queries and a few named
// capabilities; core never names a plugin.
import type { z } from 'zod';
import type { WorkerHooks } from './hooks.ts';
import type { WorkerEvents, WorkerState } from './events.ts';
import type { DeclarationQueries } from './worker-wrapper/declarations.ts';
import type { LoadedModel } from './model/loaded-model.ts';
import type { WeightStore } from './model/weights.ts';
import type { TextToImagePipeline } from './pipeline/text-to-image.ts';
import type { PipelineClass } from './model-runner/diffusion-model-runner.ts';
import type { WorkerServices } from './services.ts';
import type { MethodImpl, MethodName } from './rpc.ts';

export type RpcMethod = (...args: any[]) => unknown;

/** What a plugin adds to the worker; each name has one owner (a clash is an error naming both). */
export interface PluginDeclarations {
  /**
   * Makes `fn` callable through executeMethod(name, ...) and collectiveRpc. A name in
   * OmniWorkerMethods (core/rpc.ts, extended by declaration merging) must match its declared type.
   */
  method<N extends string>(name: N, fn: N extends MethodName ? MethodImpl<N> : RpcMethod): void;
  /** A request key this plugin reads (`sde`, `lora`): a key nobody declared is refused. */
  requestKey(key: string): void;
  /** A load format this plugin answers on hooks.loadModel.for(format). */
  loadFormat(format: string): void;
  /** A wakeUp tag this plugin restores in its hooks.wakeUp tap. */
  wakeTag(tag: string): void;
  /** A worker state this plugin may set through api.state.set (besides 'ready'). */
  state(name: string): void;
}

/** The model as plugins read it: what it is and where it came from, not its sessions. */
export type ModelView = Pick<LoadedModel, 'spec' | 'source' | 'tokenizer'>;

export interface PluginApi {
  /** The plugin's name: its tap name and the owner of what it declares. */
  readonly name: string;
  /** Folder that relative paths in the config (and in this plugin's options) resolve against. */
  readonly baseDir: string;
  readonly hooks: WorkerHooks;
  readonly events: WorkerEvents;
  readonly declare: PluginDeclarations;
  /** What every plugin (and core) declared. */
  readonly declared: DeclarationQueries;
  /** The model's weights: versioned, swapped whole (docs/weight-lifecycle.md). */
  readonly weights: WeightStore;
  /** The loaded model; reading it before the model is loaded is an error. */
  readonly model: ModelView;
  /**
   * True when an RPC method's arguments are its own (a structured clone, say): it may keep their
   * buffers without copying. False when they are the caller's objects.
   */
  readonly argsOwned: boolean;
  readonly state: {
    readonly current: WorkerState;
    /** Sets a state this plugin declared (api.declare.state), or 'ready'. */
    set(state: WorkerState, detail?: string): void;
  };
  /** The inference sessions (sleep releases them, wake opens them). */
  readonly sessions: {
    readonly openCount: number;
    readonly total: number;
    openAll(): Promise<void>;
    /** Returns how many were open. */
    releaseAll(): Promise<number>;
  };
  /**
   * Work in flight (rollouts, scoring): waits for it, or aborts it first (its error then ends with
   * `reason`, "aborted by plugin '<name>'" by default); returns how much there was.
   */
  drainRollouts(mode: 'wait' | 'abort', reason?: string): Promise<number>;
  /**
   * Runs a plugin's model work (scoring, say) as work in flight, like a rollout: drainRollouts
   * (sleep, reInitPipeline) and close wait for it, or abort `signal` first.
   */
  runInFlight<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T>;
  /**
   * Replaces one of the worker's services (core/services.ts) for this worker; the tokenizer, the
   * model-folder reader and the initial pipeline are read when the model loads, so swap them in apply.
   */
  overrideService<K extends keyof WorkerServices>(name: K, service: WorkerServices[K]): void;
  /** The pipeline every batch runs (re_init_pipeline swaps it; weights and sessions stay). */
  readonly pipeline: {
    readonly current: TextToImagePipeline;
    /**
     * Swaps, then disposes the old pipeline. The swap stands whatever dispose() does: its failure
     * comes back as `disposeError` (and a 'log' warning), not as a rejection.
     */
    swap(cls: PipelineClass, options?: Record<string, unknown>): Promise<{ previous: string; disposeError?: string }>;
  };
}

export interface WorkerPlugin<Options = any> {
  /** Also the tap name of its hooks and the owner of its declarations. */
  readonly name: string;
  /** Plugins that must be in the same worker's plugin list; checked before any plugin applies. */
  readonly dependencies?: readonly string[];
  /** Core validates the config's options with it; without it, the plugin takes no options. */
  readonly optionsSchema?: z.ZodType<Options>;
  apply(api: PluginApi, options: Options): void | Promise<void>;
}

/** Types apply's options from the schema. */
export function definePlugin<S extends z.ZodType>(plugin: WorkerPlugin<z.output<S>> & { optionsSchema: S }): WorkerPlugin<z.output<S>>;
export function definePlugin(plugin: WorkerPlugin<Record<string, never>> & { optionsSchema?: undefined }): WorkerPlugin<Record<string, never>>;
export function definePlugin(plugin: WorkerPlugin): WorkerPlugin {
  return Object.freeze({ ...plugin });
}

/** Resolves built-in plugin names to definitions; given to core from outside (core knows none). */
export type PluginRegistry = Record<string, () => Promise<WorkerPlugin>>;
