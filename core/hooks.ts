// Every extension point of the worker, declared in one place (webpack's Compiler.hooks idea).
// tapable hooks may change or stop the flow; notifications go through WorkerEvents instead.
// The hook's kind is in its type: Bail = first non-undefined result wins, Waterfall = each
// tap transforms the value, Series = all run in order.
import { AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, HookMap, SyncBailHook, SyncHook, SyncWaterfallHook } from 'tapable';
import type { ModelSource, LoadRequest } from './model/source.ts';
import type { BatchContext, BatchPlan, NoiseSource, OutputPlan, StepContext, StepResult } from './pipeline/types.ts';
import type { RolloutData } from './protocol.ts';
import type { HostTensor } from './tensors/tensor.ts';

export interface SleepReport {
  level: number;
  /** Bytes released, measured by whoever released them. */
  freedBytes: number;
  released: string[];
}

export function createWorkerHooks() {
  return Object.freeze({
    // ---- worker life ----
    /**
     * One hook per load format (tapable's HookMap, keyed like webpack's): hooks.loadModel.for('dummy').
     * The first tap that answers wins; core's 'onnx' folder loader answers last. A format must be
     * declared (api.declare.loadFormat) for the worker to use it.
     */
    loadModel: new HookMap(() => new AsyncSeriesBailHook<[LoadRequest], ModelSource | undefined>(['request'])),
    afterLoadModel: new AsyncSeriesHook<[ModelSource]>(['model']),
    /** Levels are the plugin's business; each tap releases what it owns and adds to the report. */
    sleep: new AsyncSeriesWaterfallHook<[SleepReport]>(['report']),
    /** Tags to restore ("weights", "sessions", or a plugin's own). */
    wakeUp: new AsyncSeriesHook<[readonly string[]]>(['tags']),
    /**
     * The tensors a planned batch will return, before any batch of the call runs: each plugin adds
     * (or drops) what its request options make the rollout hold, and may throw on bad options.
     */
    planOutputs: new SyncWaterfallHook<[OutputPlan, BatchPlan]>(['outputs', 'batch']),
    /** Before anything runs; a tap may throw to refuse the batch (asleep, bad options). */
    beforeExecute: new AsyncSeriesHook<[BatchContext]>(['batch']),
    close: new AsyncSeriesHook<[]>([]),

    // ---- one batch's flow ----
    /** Picks the noise source (replay of stored noise, say). */
    noiseSource: new SyncWaterfallHook<[NoiseSource, BatchContext]>(['noise', 'batch']),
    /** Transforms the initial latents [B, C, h, w]. */
    prepareLatents: new SyncWaterfallHook<[Float32Array, BatchContext]>(['latents', 'batch']),
    beforeStep: new SyncHook<[StepContext]>(['step']),
    /** The scheduler step. Built-in Euler answers last; a plugin returning a result replaces it. */
    schedulerStep: new SyncBailHook<[StepContext], StepResult | undefined>(['step']),
    afterStep: new SyncHook<[StepContext, StepResult]>(['step', 'result']),
    /** Latents [B, C, h, w] to images in [-1, 1] [B, 3, H, W]; the built-in decoder answers last. */
    decode: new AsyncSeriesBailHook<[HostTensor, BatchContext], HostTensor | undefined>(['latents', 'batch']),
    /** The batch's rollout before it is returned: plugins add or drop outputs. */
    afterExecute: new AsyncSeriesWaterfallHook<[RolloutData, BatchContext]>(['rollout', 'batch']),
  });
}

export type WorkerHooks = ReturnType<typeof createWorkerHooks>;

/** Explicit ordering between plugins: 'pre' taps run before default ones, 'post' after. */
export type TapOrder = 'pre' | 'normal' | 'post';
const STAGE: Record<TapOrder, number> = { pre: -100, normal: 0, post: 100 };
/** Stage of core's built-in fallbacks: after every plugin tap. */
export const CORE_FALLBACK_STAGE = 1000;

export function tapOptions(name: string, order: TapOrder = 'normal') {
  return { name, stage: STAGE[order] };
}
