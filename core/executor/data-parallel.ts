// One inference worker per device (vLLM's data-parallel executor idea): a generate call is split
// across the workers by samples and merged back in request order; methods that change a worker's
// state (weights, LoRA, sleep, pipeline) reach every worker, so all serve one weights version; a
// worker that dies is reported (a 'log' event), its part of the call runs on the others, and it
// is restarted with the state changes replayed.
import type { WorkerConfig } from '../config/schema.ts';
import { WORKER_EVENT_NAMES, type WorkerEventName, type WorkerEvents } from '../events.ts';
import { ListenedEvents } from './event-interest.ts';
import type { GenerateRequest, RolloutData } from '../protocol.ts';
import { DEFAULT_CLOSE_TIMEOUT_MS, ThreadExecutor, type CloseOptions, type Executor, type RegistryRef } from './executor.ts';
import { mergeParts, originError, splitBySamples, type CallPart } from './sample-split.ts';

/**
 * Methods that change what a worker serves: called on every worker, in one order, and replayed on
 * a restarted one. Other methods run on one worker (collectiveRpc reaches all).
 */
export const BROADCAST_METHODS: ReadonlySet<string> = new Set([
  'loadWeights', 'finishWeightUpdate', 'abortWeightUpdate',
  'addLora', 'removeLora', 'pinLora', 'unpinLora',
  'sleep', 'wakeUp', 'reInitPipeline', 'resetPromptCache',
]);
/** Broadcast methods whose effect a restarted worker needs (not resetPromptCache). */
const REPLAYED = new Set([...BROADCAST_METHODS].filter((m) => m !== 'resetPromptCache'));

export interface DataParallelOptions {
  /** Restarts of one worker slot before it is given up (then the others carry on). Default 3. */
  maxRestarts?: number;
  /** Starts one worker (tests swap it). */
  startWorker?: (config: WorkerConfig) => Promise<Executor & { readonly death?: Error }>;
}

interface Slot {
  index: number;
  config: WorkerConfig;
  executor: (Executor & { readonly death?: Error }) | undefined;
  /** Settles when a restart in progress is done. */
  restarting: Promise<void> | undefined;
  restarts: number;
  /** Calls in flight (for methods that run on one worker). */
  busy: number;
  /** Samples of generate parts placed here and not yet answered (placement of new parts). */
  samples: number;
}

export class DataParallelExecutor implements Executor {
  readonly events: WorkerEvents = new ListenedEvents((name, on) => { for (const slot of this.slots) this.forward(slot, name, on); });
  /** Each worker's forwarding listeners, by event name. */
  private readonly forwarders = new WeakMap<Executor, Map<WorkerEventName, (payload: unknown) => void>>();
  private readonly journal: { method: string; args: unknown[] }[] = [];
  /** Generate calls in flight; a broadcast waits for them (one version per rollout). */
  private generating = 0;
  private idle: (() => void)[] = [];
  private broadcasting: Promise<unknown> = Promise.resolve();
  private closed = false;
  private nextOne = 0;
  /** The generate calls made in this turn of the event loop, placed together (joinGroup). */
  private group: { calls: number; ways: Promise<number> } | undefined;

  private constructor(private readonly slots: Slot[], private readonly options: Required<DataParallelOptions>) {}

  /** One worker per config, started together; any start failure closes the started ones. */
  static async start(configs: WorkerConfig[], registry: RegistryRef, options: DataParallelOptions = {}): Promise<DataParallelExecutor> {
    if (configs.length === 0) throw new Error('DataParallelExecutor: no worker configs');
    const startWorker = options.startWorker ?? ((c: WorkerConfig) => ThreadExecutor.start(c, registry));
    const started = await Promise.allSettled(configs.map((c) => startWorker(c)));
    const failed = started.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      await Promise.allSettled(started.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)));
      throw new Error(`data-parallel worker ${failed} (${describe(configs[failed])}) failed to start: ${((started[failed] as PromiseRejectedResult).reason as Error).message}`);
    }
    const slots = configs.map((config, index): Slot => ({
      index, config, executor: (started[index] as PromiseFulfilledResult<Slot['executor']>).value, restarting: undefined, restarts: 0, busy: 0, samples: 0,
    }));
    const dp = new DataParallelExecutor(slots, { maxRestarts: options.maxRestarts ?? 3, startWorker });
    for (const s of slots) dp.forwardEvents(s);
    return dp;
  }

  get size(): number {
    return this.slots.length;
  }

  call(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the worker is closed'));
    if (method === 'generate') return this.generate(args[0] as GenerateRequest[]);
    // Broadcast arguments are copied to every worker and kept for a restart's replay: nothing moves.
    if (BROADCAST_METHODS.has(method)) return this.broadcast(method, args).then(agreeing(method));
    return this.onOne(method, args, transfer);
  }

  /** `method` on every worker; one result per worker, in worker order. */
  collective(method: string, args: unknown[]): Promise<unknown[]> {
    if (this.closed) return Promise.reject(new Error('the worker is closed'));
    if (BROADCAST_METHODS.has(method)) return this.broadcast(method, args);
    return Promise.all(this.slots.map((s) => this.onSlot(s, method, args)));
  }

  async close(options: CloseOptions = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.slots.map((s) => s.restarting));
    await Promise.allSettled(this.slots.map((s) => s.executor?.close({ timeoutMs: options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS })));
  }

  private async generate(requests: GenerateRequest[]): Promise<RolloutData> {
    const { limits, dataParallelSplit } = this.slots[0].config;
    // Awaited first: a broadcast made after this call waits for it (one version per rollout).
    await this.broadcasting;
    this.generating++;
    try {
      // 'idle': the calls made together share the idle workers (a lone call is split across all of
      // them); with more calls than idle workers, each goes whole, to the least loaded worker: under
      // load every part stays a full batch, not 1/n of one, and a burst of calls stays balanced.
      const ways = dataParallelSplit === 'all' ? this.slots.length : await this.joinGroup();
      const parts = splitBySamples(requests, ways, limits);
      // Placed synchronously: the calls of a group see each other's samples.
      const placed = placeParts(this.slots, parts.map((p) => p.end - p.start));
      const rollouts = await Promise.all(parts.map((part, p) => this.runPart(part, placed[p])));
      return mergeParts(parts, rollouts);
    } finally {
      if (--this.generating === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  /**
   * The parts of a call in the group of calls made in this turn of the event loop: the idle live
   * workers (counted when the turn ends) shared among the group's calls, at least one each.
   */
  private joinGroup(): Promise<number> {
    if (!this.group) {
      let settle!: (ways: number) => void;
      const group = { calls: 0, ways: new Promise<number>((r) => { settle = r; }) };
      this.group = group;
      setImmediate(() => {
        this.group = undefined;
        const idle = this.slots.filter((s) => s.samples === 0 && isLive(s)).length;
        settle(Math.max(1, Math.floor(idle / group.calls)));
      });
    }
    this.group.calls++;
    return this.group.ways;
  }

  /** A part on the slot it was placed on; when that worker dies, on the least busy live slot instead. */
  private async runPart(part: CallPart, first: Slot): Promise<RolloutData> {
    let slot = first;
    const samples = part.end - part.start;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return (await this.onSlot(slot, 'generate', [part.requests])) as RolloutData;
        } catch (e) {
          if (!(e instanceof WorkerDied) || attempt >= this.slots.length * (this.options.maxRestarts + 1)) throw originError(unwrap(e), part);
          slot.samples -= samples;
          slot = await this.liveSlot();
          slot.samples += samples;
        }
      }
    } finally {
      slot.samples -= samples;
    }
  }

  /** Broadcasts run one at a time, after the generate calls in flight (none mixes versions). */
  private broadcast(method: string, args: unknown[]): Promise<unknown[]> {
    const run = this.broadcasting.then(async () => {
      while (this.generating > 0) await new Promise<void>((r) => this.idle.push(r));
      const results = await Promise.allSettled(this.slots.map((s) => this.onSlot(s, method, args)));
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) throw new Error(`${method} failed on data-parallel worker ${failed}: ${unwrap((results[failed] as PromiseRejectedResult).reason).message}`);
      if (REPLAYED.has(method)) this.journal.push({ method, args });
      return results.map((r) => (r as PromiseFulfilledResult<unknown>).value);
    });
    this.broadcasting = run.catch(() => undefined);
    return run;
  }

  private async onOne(method: string, args: unknown[], transfer: ArrayBuffer[]): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const slot = await this.liveSlot();
      try {
        return await this.onSlot(slot, method, args, transfer);
      } catch (e) {
        if (!(e instanceof WorkerDied) || attempt >= this.slots.length) throw unwrap(e);
      }
    }
  }

  /** Calls one slot; a dead worker turns into WorkerDied (and a restart), never a plain error. */
  private async onSlot(slot: Slot, method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (slot.restarting) await slot.restarting;
    const executor = slot.executor;
    if (!executor) throw new WorkerDied(new Error(`data-parallel worker ${slot.index} was given up after ${slot.restarts} restarts`));
    slot.busy++;
    try {
      return await executor.call(method, args, transfer);
    } catch (e) {
      if (executor.death) {
        this.restart(slot, executor);
        throw new WorkerDied(executor.death);
      }
      throw e;
    } finally {
      slot.busy--;
    }
  }

  /** The least busy slot with a live worker (waits for a restart when none is live). */
  private async liveSlot(): Promise<Slot> {
    const live = this.slots.filter(isLive);
    if (live.length) {
      const least = Math.min(...live.map((s) => s.busy));
      const candidates = live.filter((s) => s.busy === least);
      return candidates[this.nextOne++ % candidates.length];
    }
    const pending = this.slots.filter((s) => s.restarting);
    if (!pending.length) throw new Error('every data-parallel worker died and none could be restarted');
    await Promise.race(pending.map((s) => s.restarting));
    return this.liveSlot();
  }

  private restart(slot: Slot, dead: NonNullable<Slot['executor']>): void {
    if (slot.executor !== dead || slot.restarting || this.closed) return;
    this.events.emit('log', { level: 'warn', message: `data-parallel worker ${slot.index} (${describe(slot.config)}) died: ${dead.death!.message}; its work goes to the others while it restarts` });
    slot.restarting = (async () => {
      while (slot.restarts < this.options.maxRestarts && !this.closed) {
        slot.restarts++;
        try {
          const executor = await this.options.startWorker(slot.config);
          // The state changes the others went through, in their order (one weights version).
          for (const { method, args } of this.journal) await executor.call(method, args);
          slot.executor = executor;
          this.forwardEvents(slot);
          this.events.emit('log', { level: 'info', message: `data-parallel worker ${slot.index} restarted (restart ${slot.restarts})` });
          return;
        } catch (e) {
          this.events.emit('log', { level: 'warn', message: `data-parallel worker ${slot.index}: restart ${slot.restarts} failed: ${(e as Error).message}` });
        }
      }
      slot.executor = undefined;
      this.events.emit('log', { level: 'warn', message: `data-parallel worker ${slot.index} given up after ${slot.restarts} restarts; ${this.slots.filter((s) => s.executor).length} workers serve on` });
    })().finally(() => {
      slot.restarting = undefined;
    });
  }

  /** Forwards from a slot's (new) worker what is listened to here, tagged with the worker's index. */
  private forwardEvents(slot: Slot): void {
    for (const name of WORKER_EVENT_NAMES) if (this.events.listenerCount(name) > 0) this.forward(slot, name, true);
  }

  /**
   * Listens to `name` on the slot's worker only while someone listens here: a thread posts only
   * the events its caller listens to (event-interest.ts).
   */
  private forward(slot: Slot, name: WorkerEventName, on: boolean): void {
    const executor = slot.executor;
    if (!executor) return;
    let forwarders = this.forwarders.get(executor);
    if (!forwarders) this.forwarders.set(executor, (forwarders = new Map()));
    const existing = forwarders.get(name);
    if (!on) {
      if (existing) executor.events.off(name, existing as never);
      forwarders.delete(name);
      return;
    }
    if (existing) return;
    const forwarder = (payload: unknown) => {
      if (slot.executor !== executor) return;
      // Batch ids are per worker: the worker's index keeps (worker, batchId) unique here.
      const tagged = name === 'step' || name === 'batchDone' ? { ...(payload as object), worker: slot.index } : payload;
      this.events.emit(name, tagged as never);
    };
    forwarders.set(name, forwarder);
    executor.events.on(name, forwarder as never);
  }
}

class WorkerDied extends Error {
  constructor(readonly reason: Error) {
    super(reason.message);
  }
}

function isLive(s: Slot): boolean {
  return s.executor !== undefined && !s.restarting && !s.executor.death;
}

/**
 * The slot of each part: the least loaded (samples placed, then index), live ones first, each
 * slot at most once per call; the parts' samples are booked on their slots.
 */
function placeParts(slots: readonly Slot[], samples: readonly number[]): Slot[] {
  const order = [...slots].sort((a, b) => Number(isLive(b)) - Number(isLive(a)) || a.samples - b.samples || a.index - b.index);
  return samples.map((n, p) => {
    const slot = order[p % order.length];
    slot.samples += n;
    return slot;
  });
}

function unwrap(e: unknown): Error {
  return e instanceof WorkerDied ? e.reason : (e as Error);
}

function describe(config: WorkerConfig): string {
  return config.device === 'cuda' && config.deviceId !== undefined ? `cuda:${config.deviceId}` : config.device;
}

/** A broadcast's one answer (executeMethod): the workers must agree on the weights version. */
function agreeing(method: string) {
  return (results: unknown[]): unknown => {
    const versions = results.map((r) => (r as { weightsVersion?: unknown } | null)?.weightsVersion);
    if (versions.some((v) => v !== versions[0])) {
      throw new Error(`${method}: the data-parallel workers disagree on the weights version (${versions.map((v, i) => `worker ${i}: ${String(v)}`).join(', ')})`);
    }
    return results[0];
  };
}

/** One config per data-parallel worker (`devices`, or `dataParallelSize` workers on `device`). */
export function workerConfigs(config: WorkerConfig): WorkerConfig[] {
  if (config.devices && config.dataParallelSize > 1) {
    throw new Error(`config: give devices (${config.devices.length}) or dataParallelSize (${config.dataParallelSize}), not both: devices already names one worker per entry`);
  }
  const one = (device: WorkerConfig['device'], deviceId: number | undefined): WorkerConfig => ({ ...config, device, deviceId, devices: undefined, dataParallelSize: 1 });
  const list = config.devices
    ? config.devices.map((d) => {
      const [name, id] = d.split(':') as [WorkerConfig['device'], string | undefined];
      return one(name, id === undefined ? config.deviceId : Number(id));
    })
    : Array.from({ length: config.dataParallelSize }, () => one(config.device, config.deviceId));
  if (list.length > 1 && config.executor === 'inline') {
    throw new Error(`config: ${list.length} data-parallel workers need executor 'thread', not 'inline' (inline runs on the caller's one thread)`);
  }
  return list;
}
