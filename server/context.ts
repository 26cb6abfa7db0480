// What every route gets: the worker, the checked options, the coalescer, the metrics, the weights
// body assembler, and `call`, which runs a worker method and turns its refusal into an HTTP error.
import type { OmniWorker } from '../index.ts';
import { PathAllowlist } from '../core/public.ts';
import type { RolloutCoalescer } from './coalescer.ts';
import { SafetensorsAssembler } from './stream-safetensors.ts';
import { HttpError, workerError } from './http-error.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ServeOptions } from './options.ts';

export class ServerContext {
  /** Builds weights bodies' tensors beside the main thread (closed with the server). */
  readonly assembler = new SafetensorsAssembler();

  constructor(
    readonly worker: OmniWorker,
    readonly options: ServeOptions,
    readonly coalescer: RolloutCoalescer,
    readonly metrics: ServerMetrics,
    /** The methods the worker lists (core's, plugins', extension classes'). */
    readonly methods: ReadonlySet<string>,
    private readonly weightPaths: PathAllowlist,
  ) {}

  /** 404 naming the method when no loaded plugin or extension class declares it. */
  need(method: string, field = 'method'): void {
    if (!this.methods.has(method)) {
      throw new HttpError(404, field, `the worker has no method '${method}': no loaded plugin or extension class declares it (it has: ${[...this.methods].join(', ')})`);
    }
  }

  async call<T = unknown>(method: string, args: unknown[] = [], transfer: ArrayBuffer[] = []): Promise<T> {
    this.need(method);
    try {
      const value = (transfer.length
        ? await this.worker.executeMethodTransfer(method, args, transfer)
        : await this.worker.executeMethod(method, ...args)) as T;
      this.metrics.noteVersion((value as { weightsVersion?: unknown } | null)?.weightsVersion);
      return value;
    } catch (e) {
      throw e instanceof HttpError ? e : workerError(e);
    }
  }

  /** A weights file the server may read: under `weightRoots`, a .safetensors file. */
  async weightsPath(path: unknown, field: string): Promise<string> {
    if (typeof path !== 'string' || !path) throw new HttpError(400, field, `${field} must be a path to a .safetensors file`);
    if (!path.endsWith('.safetensors')) throw new HttpError(400, field, `${field} ${JSON.stringify(path)} is not a .safetensors file`);
    try {
      return await this.weightPaths.resolve(path, 'file', field);
    } catch (e) {
      throw new HttpError(403, field, `${(e as Error).message} (the server's weightRoots: ${this.weightPaths.roots.join(', ') || 'none'})`);
    }
  }
}
