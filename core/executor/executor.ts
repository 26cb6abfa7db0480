// An executor delivers method calls to the worker(s) (vLLM's executor idea): in a worker thread
// (the default: ONNX Runtime's run blocks its thread) or inline on the caller's thread.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { WorkerEvents, type WorkerEventName } from '../events.ts';
import type { WorkerConfig } from '../config/schema.ts';
import type { PluginRegistry } from '../plugin.ts';
import { WorkerWrapperBase } from '../worker-wrapper/worker-wrapper-base.ts';
import { prepareDeviceEnvironment } from '../model/execution-provider.ts';
import type { WorkerServices } from '../services.ts';
import { reviveError, type FromThread, type ToThread } from './protocol.ts';

export interface Executor {
  readonly events: WorkerEvents;
  /** `transfer`: buffers under `args` that move to the inference thread instead of being copied. */
  call(method: string, args: unknown[], transfer?: ArrayBuffer[]): Promise<unknown>;
  close(): Promise<void>;
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

  close(): Promise<void> {
    return this.wrapper.close();
  }
}

export class ThreadExecutor implements Executor {
  readonly events = new WorkerEvents();
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited: Error | undefined;

  private constructor(private readonly thread: Worker) {}

  static start(config: WorkerConfig, registry: RegistryRef): Promise<ThreadExecutor> {
    prepareDeviceEnvironment(config.device, config.cudaTf32); // here: the thread's env is a copy
    const boot = fileURLToPath(new URL('./thread-boot.mjs', import.meta.url));
    const thread = new Worker(boot, { workerData: { config, registryModule: registry.module, registryExport: registry.export } });
    const executor = new ThreadExecutor(thread);
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the inference thread exited with code ${code} before it was ready`));
      thread.once('error', reject);
      thread.once('exit', onExit);
      thread.on('message', (m: FromThread) => {
        if (m.kind === 'ready') {
          thread.off('exit', onExit);
          thread.off('error', reject);
          executor.listen();
          resolve(executor);
        } else if (m.kind === 'failed') {
          thread.off('exit', onExit);
          void thread.terminate();
          reject(reviveError(m.error));
        } else {
          executor.onMessage(m);
        }
      });
    });
  }

  private listen(): void {
    this.thread.on('error', (e) => this.fail(e));
    this.thread.on('exit', (code) => this.fail(new Error(`the inference thread exited (code ${code})`)));
  }

  private fail(e: Error): void {
    this.exited ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private onMessage(m: FromThread): void {
    if (m.kind === 'event') {
      this.events.emit(m.name as WorkerEventName, m.payload as never);
    } else if (m.kind === 'result') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!p) return;
      if (m.ok) p.resolve(m.value);
      else p.reject(reviveError(m.error));
    }
  }

  private send(message: ToThread, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.thread.postMessage(message, transfer);
    });
  }

  call(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    return this.send({ kind: 'call', id: this.nextId++, method, args }, transfer);
  }

  async close(): Promise<void> {
    if (this.exited) return;
    await this.send({ kind: 'close', id: this.nextId++ });
    await this.thread.terminate();
  }
}
