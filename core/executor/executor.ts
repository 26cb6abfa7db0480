// An executor delivers method calls to the worker(s) (vLLM's executor idea): in a worker thread
// (the default: ONNX Runtime's run blocks its thread) or inline on the caller's thread.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { WorkerEvents, type WorkerEventName } from '../events.ts';
import type { WorkerConfig } from '../config/schema.ts';
import type { PluginRegistry } from '../plugin.ts';
import { WorkerWrapperBase } from '../worker-wrapper/worker-wrapper-base.ts';
import { prepareDeviceEnvironment } from '../model/execution-provider.ts';
import type { WorkerServices } from '../services.ts';
import { reviveError, type FromThread, type ToThread } from './protocol.ts';
import { guardProcessExit, NativeGate, unguardProcessExit } from './native-gate.ts';
import { StartWatch } from './start-watch.ts';
import { EventInterest, ListenedEvents } from './event-interest.ts';
import { settlesWithin } from '../settles-within.ts';

export interface CloseOptions {
  /**
   * How long the worker gets to close gracefully (abort rollouts, run close hooks, release
   * sessions) before its thread is terminated. Default 10 000 ms.
   */
  timeoutMs?: number;
}

export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/** After a close times out: how long a native call in progress gets to return before close() settles. */
const NATIVE_RETURN_WAIT_MS = 2_000;
const CLOSED = 'the worker is closed';

export interface Executor {
  readonly events: WorkerEvents;
  /** `transfer`: buffers under `args` that move to the inference thread instead of being copied. */
  call(method: string, args: unknown[], transfer?: ArrayBuffer[]): Promise<unknown>;
  /** Settles within `timeoutMs` (plus at most 2 s for a native call to return); later calls reject. */
  close(options?: CloseOptions): Promise<void>;
}

export interface RegistryRef {
  /** Absolute path of the module exporting the plugin registry (imported in the thread). */
  module: string;
  export: string;
  /** The same registry, for inline executors. */
  registry: PluginRegistry;
}

export class InlineExecutor implements Executor {
  private constructor(readonly wrapper: WorkerWrapperBase) {}

  get events(): WorkerEvents {
    return this.wrapper.events;
  }

  static async start(config: WorkerConfig, registry: RegistryRef, services?: Partial<WorkerServices>): Promise<InlineExecutor> {
    prepareDeviceEnvironment(config.device, config.cudaTf32);
    return new InlineExecutor(await WorkerWrapperBase.create(config, { registry: registry.registry, services }));
  }

  call(method: string, args: unknown[]): Promise<unknown> {
    return this.wrapper.executeMethod(method, ...args);
  }

  /** Nothing can be terminated on the caller's own thread: past the timeout, close returns and warns. */
  async close({ timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS }: CloseOptions = {}): Promise<void> {
    if (!(await settlesWithin(this.wrapper.close(), timeoutMs))) {
      this.events.emit('log', { level: 'warn', message: `close: the worker did not finish closing within ${timeoutMs} ms (a rollout or close hook is still running on this thread)` });
    }
  }
}

export class ThreadExecutor implements Executor {
  /** The thread posts only the events listened to here (event-interest.ts). */
  readonly events: WorkerEvents = new ListenedEvents((name, listened) => this.interest.set(name, listened));
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }>();
  private nextId = 1;
  /** Why calls are refused: the thread died, or close() began. */
  private ended: Error | undefined;
  private closing: Promise<void> | undefined;
  private exited = false;

  /** Why the thread died (not set by close()): the data-parallel executor restarts on it. */
  get death(): Error | undefined {
    return this.closing ? undefined : this.ended;
  }

  private constructor(
    private readonly thread: Worker,
    private readonly gate: NativeGate,
    private readonly watch: StartWatch,
    private readonly interest: EventInterest,
    private readonly responseTimeoutMs: number,
  ) {
    thread.once('exit', () => {
      this.exited = true;
      unguardProcessExit(gate);
    });
  }

  static start(config: WorkerConfig, registry: RegistryRef): Promise<ThreadExecutor> {
    prepareDeviceEnvironment(config.device, config.cudaTf32); // here: the thread's env is a copy
    const boot = fileURLToPath(new URL('./thread-boot.mjs', import.meta.url));
    // The thread runs from files beside this one: a bundle that inlined omni-worker lacks them, and
    // Worker would only say "Cannot find module".
    const missing = [boot, registry.module].find((file) => !existsSync(file));
    if (missing) {
      return Promise.reject(new Error(`the inference thread cannot start: ${missing} is missing. It runs from omni-worker's installed files: ` +
        `a bundler that inlines omni-worker leaves them behind (keep it external, e.g. esbuild --packages=external), or use executor: 'inline'`));
    }
    const gate = new NativeGate();
    const watch = new StartWatch();
    const interest = new EventInterest();
    const thread = new Worker(boot, {
      workerData: { config, registryModule: registry.module, registryExport: registry.export, gate: gate.buffer, watch: watch.buffer, events: interest.buffer },
      ...(config.threadResourceLimits ? { resourceLimits: config.threadResourceLimits } : {}),
    });
    guardProcessExit(gate);
    const executor = new ThreadExecutor(thread, gate, watch, interest, config.threadResponseTimeoutMs);
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(new Error(`the inference thread failed to start: ${e.message}`));
      const onExit = (code: number) => reject(new Error(`the inference thread exited with code ${code} before it was ready`));
      thread.once('error', onError);
      thread.once('exit', onExit);
      thread.on('message', (m: FromThread) => {
        if (m.kind === 'ready') {
          thread.off('exit', onExit);
          thread.off('error', onError);
          executor.listen();
          thread.unref(); // idle: the caller's process may exit without close()
          resolve(executor);
        } else if (m.kind === 'failed') {
          thread.off('exit', onExit);
          reject(reviveError(m.error)); // the thread exits by itself
        } else {
          executor.onMessage(m);
        }
      });
    });
  }

  private listen(): void {
    const gone = 'its model, weights and adapters are gone: create a new worker';
    this.thread.on('error', (e: Error & { code?: string }) => this.end(new Error(`the inference thread died: ${e.message}${e.code ? ` (${e.code})` : ''}; ${gone}`)));
    this.thread.on('exit', (code) => this.end(new Error(`the inference thread exited (code ${code}); ${gone}`)));
  }

  /** Rejects every pending call; later calls reject with the same reason (close() keeps its own). */
  private end(reason: Error): void {
    if (!this.closing) this.ended ??= reason;
    const why = this.closing ? new Error(CLOSED) : this.ended!;
    for (const p of this.pending.values()) p.reject(why);
    this.pending.clear();
  }

  private onMessage(m: FromThread): void {
    if (m.kind === 'event') {
      // A listener's exception is the caller's own: it is thrown here as from any emitter.
      this.events.emit(m.name as WorkerEventName, m.payload as never);
    } else if (m.kind === 'result') {
      const p = this.settle(m.id);
      if (!p) return;
      if (m.ok) p.resolve(m.value);
      else p.reject(reviveError(m.error));
    }
  }

  /** Takes a call out of the pending ones; an idle thread no longer keeps the process alive. */
  private settle(id: number) {
    const p = this.pending.get(id);
    this.pending.delete(id);
    clearTimeout(p?.timer);
    if (!this.pending.size && !this.closing) this.thread.unref();
    return p;
  }

  private request(message: ToThread, transfer: ArrayBuffer[] = []): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.thread.ref(); // a call in flight keeps the process alive
      try {
        this.thread.postMessage(message, transfer);
      } catch (e) {
        this.settle(message.id);
        reject(e);
      }
    });
  }

  call(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.ended) return Promise.reject(this.closing ? new Error(CLOSED) : this.ended);
    const id = this.nextId++;
    const answer = this.request({ kind: 'call', id, method, args }, transfer);
    const p = this.pending.get(id);
    if (p) {
      const ms = this.responseTimeoutMs;
      p.timer = setTimeout(() => {
        if (!this.watch.abandon(id)) return; // taken up in time: it runs to its answer
        this.settle(id);
        p.reject(new Error(`${method}: the inference thread did not take this call up within ${ms} ms (config threadResponseTimeoutMs): synchronous code in a pipeline or plugin blocks it; the call was not run (close() terminates the thread)`));
      }, ms);
      p.timer.unref();
    }
    return answer;
  }

  /** Concurrent calls share one close. */
  close({ timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS }: CloseOptions = {}): Promise<void> {
    return (this.closing ??= this.shutdown(timeoutMs));
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const dead = this.exited || this.ended !== undefined;
    this.ended = new Error(CLOSED);
    if (dead) return;
    this.thread.ref();
    const reply = this.request({ kind: 'close', id: this.nextId++ });
    if (!(await settlesWithin(reply, timeoutMs))) {
      this.events.emit('log', { level: 'warn', message: `close: the worker did not finish closing within ${timeoutMs} ms (a rollout, pipeline or close hook still running); its thread was terminated` });
    }
    await this.stopThread();
    this.end(this.ended);
  }

  /**
   * Terminates the thread once no native ONNX Runtime call runs in it (stopping it inside one
   * aborts the process). A call that outlasts the wait is left to return first; meanwhile the
   * thread does not keep the process alive.
   */
  private async stopThread(): Promise<void> {
    if (this.exited) return;
    if (await this.gate.shut(NATIVE_RETURN_WAIT_MS)) {
      await this.thread.terminate();
      return;
    }
    this.thread.unref();
    const poll = setInterval(() => {
      if (this.gate.active === 0) {
        clearInterval(poll);
        void this.thread.terminate();
      }
    }, 50);
    poll.unref();
  }
}
