// Notifications only: nothing a listener does can change the flow (that is what hooks are for).
import { EventEmitter } from 'eventemitter3';

export type WorkerState = 'loading' | 'ready' | 'sleeping' | 'closed';

export interface WorkerEventMap {
  step: [info: { batchId: number; step: number; steps: number; batchSize: number }];
  batchDone: [info: { batchId: number; batchSize: number; seconds: number }];
  requestDone: [info: { requests: number; samples: number; seconds: number }];
  state: [info: { state: WorkerState; detail?: string }];
  log: [info: { level: 'info' | 'warn'; message: string }];
}

export type WorkerEventName = keyof WorkerEventMap;
export const WORKER_EVENT_NAMES: readonly WorkerEventName[] = ['step', 'batchDone', 'requestDone', 'state', 'log'];

export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
