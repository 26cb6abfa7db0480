// omni-worker's public API: createWorker(config) -> generate / executeMethod / collectiveRpc / close.
import { existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from './core/config/load-config.ts';
import type { WorkerConfig, WorkerConfigInput } from './core/config/schema.ts';
import { InlineExecutor, ThreadExecutor, type CloseOptions, type Executor, type RegistryRef } from './core/executor/executor.ts';
import { DataParallelExecutor, workerConfigs } from './core/executor/data-parallel.ts';
import type { WorkerEvents } from './core/events.ts';
import type { GenerateRequest, RolloutData } from './core/protocol.ts';
import { BUILTIN_PLUGINS } from './plugins/builtin.ts';
import { RolloutBatch } from './core/rollout/rollout-batch.ts';
import { PACKAGE_ROOT } from './core/package-paths.ts';
import type { WorkerServices } from './core/services.ts';
import type { ExecuteMethod, MethodArgs, MethodName, MethodResult } from './core/rpc.ts';

export * from './core/public.ts';
export { BUILTIN_PLUGINS };
export type { CloseOptions };
export { scoreArgsFromRollout } from './plugins/sde-scheduler/score-args.ts';
// The built-in plugins' RPC argument and result types. Importing them also brings each plugin's
// additions to OmniWorkerMethods (declaration merging) into the consumer's program.
export type { ScoreArgs, ScoreResult } from './plugins/sde-scheduler/index.ts';
export type { LoadWeightsArgs, LoadWeightsResult, FinishWeightUpdateResult } from './plugins/weight-sync/index.ts';
export type { SleepArgs, SleepResult, WakeUpArgs, WakeResult, SleepState } from './plugins/sleep-mode/index.ts';
export type { AddLoraArgs, AddLoraResult, LoraListing } from './plugins/lora/index.ts';
export type { AdapterInfo } from './plugins/lora/registry.ts';
export type { ReInitArgs, ReInitResult } from './plugins/custom-pipeline/index.ts';
export * as rewards from './rewards/index.ts';

/** The embedded default model, shipped in the package. */
export const EMBEDDED_MODEL_DIR = join(PACKAGE_ROOT, 'models', 'shapes-dit');

// '.ts' running the sources, '.js' compiled: the inference thread imports the registry by path.
const MODULE_EXT = extname(fileURLToPath(import.meta.url));

const BUILTIN_REF: RegistryRef = {
  module: fileURLToPath(new URL(`./plugins/builtin${MODULE_EXT}`, import.meta.url)),
  export: 'BUILTIN_PLUGINS',
  registry: BUILTIN_PLUGINS,
};

export interface OmniWorker {
  readonly config: WorkerConfig;
  /** Notifications (per-step progress, batch and request done, state changes). */
  readonly events: WorkerEvents;
  /** One rollout for all requests, samples in request order. */
  generate(requests: GenerateRequest[]): Promise<RolloutBatch>;
  /**
   * Calls a method by name. A name in OmniWorkerMethods (core's, the built-in plugins', and any a
   * plugin adds by declaration merging) checks its arguments and types its result; other names
   * (extension classes, plugins that declare no types) take and give unknown.
   */
  executeMethod: ExecuteMethod;
  /**
   * executeMethod whose listed buffers move to the inference thread instead of being copied
   * (they are detached here): a trainer's weight buckets, say. Inline workers ignore `transfer`.
   */
  executeMethodTransfer<N extends MethodName>(name: N, args: MethodArgs<N>, transfer: ArrayBuffer[]): Promise<MethodResult<N>>;
  executeMethodTransfer<N extends string>(name: N extends MethodName ? never : N, args: unknown[], transfer: ArrayBuffer[]): Promise<unknown>;
  /** Calls `name` on every worker; one result per worker (one per data-parallel worker). */
  collectiveRpc<N extends MethodName>(name: N, ...args: [] extends MethodArgs<N> ? [args?: MethodArgs<N>] : [args: MethodArgs<N>]): Promise<MethodResult<N>[]>;
  collectiveRpc<N extends string>(name: N extends MethodName ? never : N, args?: unknown[]): Promise<unknown[]>;
  /**
   * Aborts rollouts in flight, runs plugins' close hooks, releases the sessions; past
   * `timeoutMs` (10 s) the inference thread is terminated. Every pending and later call rejects
   * with "the worker is closed". Concurrent calls share one close; it never rejects (problems
   * come as 'log' warnings).
   */
  close(options?: CloseOptions): Promise<void>;
}

/** With no model named, the embedded model; an error naming its path when it is missing. */
export function withDefaultModel(config: WorkerConfig, embeddedModelDir: string = EMBEDDED_MODEL_DIR): WorkerConfig {
  if (config.model || config.loadFormat !== 'onnx') return config;
  const manifest = join(embeddedModelDir, 'model.json');
  if (!existsSync(manifest)) {
    throw new Error(`no model named (config.model) and the embedded model is missing: ${manifest} does not exist; ` +
      `give config.model a model folder, or loadFormat 'dummy' for a random test model`);
  }
  return { ...config, model: embeddedModelDir };
}

export interface CreateWorkerOptions {
  /**
   * Services that replace core's defaults for this worker: tokenizer, modelFolder, pipeline,
   * randomSeed (core/services.ts). Functions do not cross to an inference thread, so these need
   * `executor: 'inline'`; with the thread executor a plugin swaps one (api.overrideService).
   */
  services?: Partial<WorkerServices>;
}

export async function createWorker(config?: WorkerConfigInput | WorkerConfig | string, options: CreateWorkerOptions = {}): Promise<OmniWorker> {
  const resolved = withDefaultModel(resolveConfig(config));
  const { services } = options;
  if (services && Object.keys(services).length && resolved.executor !== 'inline') {
    throw new Error(`createWorker: services (${Object.keys(services).join(', ')}) need executor 'inline', not '${resolved.executor}' ` +
      `(functions do not cross to the inference thread; a plugin can swap them with api.overrideService instead)`);
  }
  const configs = workerConfigs(resolved);
  const executor: Executor = configs.length > 1
    ? await DataParallelExecutor.start(configs, BUILTIN_REF)
    : resolved.executor === 'inline'
      ? await InlineExecutor.start(configs[0], BUILTIN_REF, services)
      : await ThreadExecutor.start(configs[0], BUILTIN_REF);
  return {
    config: resolved,
    events: executor.events,
    generate: async (requests) => new RolloutBatch((await executor.call('generate', [requests])) as RolloutData),
    // The overloads are the types; underneath, one call by name.
    executeMethod: ((name: string, ...args: unknown[]) => executor.call(name, args)) as ExecuteMethod,
    executeMethodTransfer: ((name: string, args: unknown[], transfer: ArrayBuffer[]) => executor.call(name, args, transfer)) as OmniWorker['executeMethodTransfer'],
    collectiveRpc: (async (name: string, args: unknown[] = []) => executor instanceof DataParallelExecutor
      ? executor.collective(name, args)
      : [await executor.call(name, args)]) as OmniWorker['collectiveRpc'],
    close: (options) => executor.close(options),
  };
}
