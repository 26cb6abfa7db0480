// Which worker events the caller listens to, in memory shared with the inference thread: the thread
// posts an event only while someone listens to it. Each posted event wakes the caller's thread, and
// on a 2-core machine that wake-up takes a core from ONNX Runtime in the middle of a step (a batch-1
// call posts 13 events; BENCHMARKS.md, "CPU re-run"). Shared memory, not a message, so that a
// listener added during a call gets the events emitted from then on, not from the next call.
import type { EventEmitter } from 'eventemitter3';
import { WORKER_EVENT_NAMES, WorkerEvents, type WorkerEventMap, type WorkerEventName } from '../events.ts';

type Listener<T extends WorkerEventName> = EventEmitter.EventListener<WorkerEventMap, T>;

export class EventInterest {
  private readonly flags: Int32Array;

  constructor(readonly buffer = new SharedArrayBuffer(WORKER_EVENT_NAMES.length * Int32Array.BYTES_PER_ELEMENT)) {
    this.flags = new Int32Array(buffer);
  }

  /** Thread side: whether the caller listens to `name` now. */
  has(name: WorkerEventName): boolean {
    return Atomics.load(this.flags, WORKER_EVENT_NAMES.indexOf(name)) !== 0;
  }

  set(name: WorkerEventName, listened: boolean): void {
    Atomics.store(this.flags, WORKER_EVENT_NAMES.indexOf(name), Number(listened));
  }
}

/** WorkerEvents that report, name by name, when the first listener comes and the last one goes. */
export class ListenedEvents extends WorkerEvents {
  private readonly listened = new Set<WorkerEventName>();

  constructor(private readonly changed: (name: WorkerEventName, listened: boolean) => void) {
    super();
  }

  override on<T extends WorkerEventName>(event: T, fn: Listener<T>, context?: unknown): this {
    super.on(event, fn, context);
    return this.sync();
  }

  override addListener<T extends WorkerEventName>(event: T, fn: Listener<T>, context?: unknown): this {
    return this.on(event, fn, context);
  }

  override once<T extends WorkerEventName>(event: T, fn: Listener<T>, context?: unknown): this {
    super.once(event, fn, context);
    return this.sync();
  }

  // eventemitter3 removes a once-listener through removeListener as it fires: counted here too.
  override removeListener<T extends WorkerEventName>(event: T, fn?: Listener<T>, context?: unknown, once?: boolean): this {
    super.removeListener(event, fn, context, once);
    return this.sync();
  }

  override off<T extends WorkerEventName>(event: T, fn?: Listener<T>, context?: unknown, once?: boolean): this {
    return this.removeListener(event, fn, context, once);
  }

  override removeAllListeners(event?: WorkerEventName): this {
    super.removeAllListeners(event);
    return this.sync();
  }

  private sync(): this {
    for (const name of WORKER_EVENT_NAMES) {
      const now = this.listenerCount(name) > 0;
      if (now === this.listened.has(name)) continue;
      if (now) this.listened.add(name);
      else this.listened.delete(name);
      this.changed(name, now);
    }
    return this;
  }
}
