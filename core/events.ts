// Notifications only: nothing a listener does can change the flow (that is what hooks are for).
import { EventEmitter } from 'eventemitter3';

/**
 * States plugins add to core's, by declaration merging (sleep-mode adds 'sleeping'):
 *   declare module 'omni-worker' { interface PluginWorkerStates { sleeping: true } }
 * and by api.declare.state('sleeping') at run time.
 */
export interface PluginWorkerStates {}

export type WorkerState = 'loading' | 'ready' | 'closed' | Extract<keyof PluginWorkerStates, string>;

export interface WorkerEventMap {
  /**
   * batchId: unique within the worker, shared by a batch's step and batchDone events. With
   * several workers (data parallel), `worker` says which one ran the batch: (worker, batchId) is
   * then the unique pair.
   */
  step: [info: { batchId: number; step: number; steps: number; batchSize: number; worker?: number }];
  batchDone: [info: { batchId: number; batchSize: number; seconds: number; worker?: number }];
  requestDone: [info: { requests: number; samples: number; seconds: number }];
  state: [info: { state: WorkerState; detail?: string }];
  log: [info: { level: 'info' | 'warn'; message: string }];
}

export type WorkerEventName = keyof WorkerEventMap;
export const WORKER_EVENT_NAMES: readonly WorkerEventName[] = ['step', 'batchDone', 'requestDone', 'state', 'log'];

export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
