// The RPC method map: each method callable through executeMethod / collectiveRpc, with its
// argument and result types. Core declares its own methods here; a plugin adds its methods by
// declaration merging (declare module 'omni-worker' { interface OmniWorkerMethods { ... } }),
// so that `executeMethod('loadWeights', args)` checks `args` and returns the plugin's result.
// Results are the values the method returns, after the thread boundary (structured clone).
import type { GenerateRequest, RolloutData } from './protocol.ts';
import type { WorkerState } from './events.ts';

export interface WorkerStateInfo {
  state: WorkerState;
  weightsVersion: number;
  /** Names of the applied plugins, in order. */
  plugins: string[];
  /** Where the model came from (a folder, or "dummy:{...}"). */
  model: string;
}

export interface OmniWorkerMethods {
  /** One rollout for all requests, as plain data (createWorker's generate wraps it in a RolloutBatch). */
  generate(requests: GenerateRequest[]): RolloutData;
  /** Every method name, sorted. */
  listMethods(): string[];
  getState(): WorkerStateInfo;
  /** Empties the prompt-embedding cache; returns how many entries it held. */
  resetPromptCache(): number;
}

export type MethodName = keyof OmniWorkerMethods & string;
export type MethodArgs<N extends MethodName> = Parameters<OmniWorkerMethods[N]>;
export type MethodResult<N extends MethodName> = Awaited<ReturnType<OmniWorkerMethods[N]>>;
/**
 * Calls a method by name. A name in OmniWorkerMethods checks its arguments and types its result;
 * other names (extension classes, plugins that declare no types) take and give unknown.
 */
export interface ExecuteMethod {
  <N extends MethodName>(name: N, ...args: MethodArgs<N>): Promise<MethodResult<N>>;
  <N extends string>(name: N extends MethodName ? never : N, ...args: unknown[]): Promise<unknown>;
}

/** What a plugin's implementation of a declared method may return. */
export type MethodImpl<N extends MethodName> = (...args: MethodArgs<N>) => MethodResult<N> | Promise<MethodResult<N>>;
