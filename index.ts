// omni-worker's public API: createWorker(config) -> generate / executeMethod / collectiveRpc / close.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from './core/config/load-config.ts';
import type { WorkerConfig, WorkerConfigInput } from './core/config/schema.ts';
import { InlineExecutor, ThreadExecutor, type Executor, type RegistryRef } from './core/executor/executor.ts';
import type { WorkerEvents } from './core/events.ts';
import type { GenerateRequest, RolloutData } from './core/protocol.ts';
import { BUILTIN_PLUGINS } from './plugins/builtin.ts';
import { RolloutBatch } from './core/rollout/rollout-batch.ts';

export * from './core/public.ts';
export { BUILTIN_PLUGINS };
export { scoreArgsFromRollout } from './plugins/sde-scheduler/score-args.ts';
export * as rewards from './rewards/index.ts';

/** The embedded default model, shipped in the repository. */
export const EMBEDDED_MODEL_DIR = fileURLToPath(new URL('./models/shapes-dit', import.meta.url));

const BUILTIN_REF: RegistryRef = {
  module: fileURLToPath(new URL('./plugins/builtin.ts', import.meta.url)),
  export: 'BUILTIN_PLUGINS',
  registry: BUILTIN_PLUGINS,
};

export interface OmniWorker {
  readonly config: WorkerConfig;
  /** Notifications (per-step progress, batch and request done, state changes). */
  readonly events: WorkerEvents;
  /** One rollout for all requests, samples in request order. */
  generate(requests: GenerateRequest[]): Promise<RolloutBatch>;
  executeMethod(name: string, ...args: unknown[]): Promise<unknown>;
  /**
   * executeMethod whose listed buffers move to the inference thread instead of being copied
   * (they are detached here): a trainer's weight buckets, say. Inline workers ignore `transfer`.
   */
  executeMethodTransfer(name: string, args: unknown[], transfer: ArrayBuffer[]): Promise<unknown>;
  /** Calls `name` on every worker; one result per worker (one worker for now). */
  collectiveRpc(name: string, args?: unknown[]): Promise<unknown[]>;
  close(): Promise<void>;
}

/** With no model named, the embedded model; before it exists, the dummy model. */
export function withDefaultModel(config: WorkerConfig): WorkerConfig {
  if (config.model || config.loadFormat !== 'onnx') return config;
  if (existsSync(`${EMBEDDED_MODEL_DIR}/model.json`)) return { ...config, model: EMBEDDED_MODEL_DIR };
  return { ...config, loadFormat: 'dummy' };
}

export async function createWorker(config?: WorkerConfigInput | WorkerConfig | string): Promise<OmniWorker> {
  const resolved = withDefaultModel(resolveConfig(config));
  const executor: Executor = resolved.executor === 'inline'
    ? await InlineExecutor.start(resolved, BUILTIN_REF)
    : await ThreadExecutor.start(resolved, BUILTIN_REF);
  return {
    config: resolved,
    events: executor.events,
    generate: async (requests) => new RolloutBatch((await executor.call('generate', [requests])) as RolloutData),
    executeMethod: (name, ...args) => executor.call(name, args),
    executeMethodTransfer: (name, args, transfer) => executor.call(name, args, transfer),
    collectiveRpc: async (name, args = []) => [await executor.call(name, args)],
    close: () => executor.close(),
  };
}
