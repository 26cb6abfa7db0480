// One ONNX graph and its sessions. Two residencies (docs/gpu-design.md):
// - inputs: parameters stay graph inputs, fed by name from a WeightMap on every run, so one
//   session serves every weights version and merged adapter (the CPU uses them in place);
// - session: parameters become initializers supplied from the map's memory, copied into the
//   session once (onto the device for CUDA); each weights map is a session (weight-sessions.ts).
import * as ort from 'onnxruntime-node';
import { DATA_INPUTS, type ComponentName } from './manifest.ts';
import { providerError, type DeviceName } from './execution-provider.ts';
import type { WeightMap } from './weights.ts';
import type { HostTensor, DType } from '../tensors/tensor.ts';
import { nativeCall } from '../executor/native-gate.ts';
import { graphInputTypes } from './graph-inputs.ts';
import { asExternalInitializers } from './initializer-graph.ts';
import { WeightSessions, type WeightSessionsOptions } from './weight-sessions.ts';
import { settleFloat16Type } from './ort-float16.ts';

settleFloat16Type(); // before any other Tensor in this realm (ort-float16.ts says why)

export type WeightResidency = 'inputs' | 'session';
/** What session residency needs from the worker: the serving map, the work in flight, the spare count. */
export type ResidencyContext = Omit<WeightSessionsOptions, 'create'>;

// Folding the weight transposes at build runs on the CPU and doubles the build (a weight update)
// for no step-time gain: the GPU transposes them cheaply each run (docs/gpu-design.md).
const NO_FOLDING = { disable_specified_optimizers: 'ConstantFolding' };

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  F32: 'float32', F16: 'float16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const HOST_TYPE: Partial<Record<ort.Tensor.Type, DType>> = Object.fromEntries(
  Object.entries(ORT_TYPE).map(([k, v]) => [v, k]),
) as Partial<Record<ort.Tensor.Type, DType>>;

/** The graph and options of a session holding `map`'s tensors as initializers (session residency). */
export function residentSession(graph: Uint8Array, map: WeightMap, options: ort.InferenceSession.SessionOptions) {
  const rewritten = asExternalInitializers(graph, map);
  const extra = { ...(options.extra as Record<string, unknown> | undefined), optimization: NO_FOLDING };
  return { graph: rewritten.graph, options: { ...options, externalData: rewritten.externalData, extra } };
}

export function toOrt(t: HostTensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new Error(`dtype ${t.dtype} cannot be fed to ONNX Runtime`);
  const tensor = new ort.Tensor(type, t.data as never, t.shape as number[]);
  if (type === 'float16' && !(tensor.data instanceof Uint16Array)) {
    throw new Error('float16 input: onnxruntime-common holds float16 data as Float16Array in this process (a Tensor was made before omni-worker loaded), ' +
      "and onnxruntime-node's binding reads Float16Array as empty; load omni-worker before other ONNX Runtime code, or use weightResidency: 'session'");
  }
  return tensor;
}

function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = HOST_TYPE[t.type];
  if (!dtype) throw new Error(`ONNX Runtime returned an unsupported type ${t.type}`);
  return { dtype, shape: [...t.dims], data: t.data as HostTensor['data'] };
}

function twoCopies(t: HostTensor): HostTensor {
  const data = new (t.data.constructor as new (n: number) => HostTensor['data'])(2 * t.data.length);
  data.set(t.data as never);
  data.set(t.data as never, t.data.length);
  return { dtype: t.dtype, shape: [2, ...t.shape.slice(1)], data };
}

function firstRow(t: HostTensor): HostTensor {
  return { dtype: t.dtype, shape: [1, ...t.shape.slice(1)], data: t.data.slice(0, t.data.length / t.shape[0]) };
}

export class OnnxComponent {
  private session: ort.InferenceSession | undefined;
  private paramNames: readonly string[] = [];
  /** ort.Tensor wrappers per weight map (no copy: they wrap the map's arrays). */
  private readonly feedsCache = new WeakMap<WeightMap, Record<string, ort.Tensor>>();
  /** Session residency: a session per weights map; `opened` says whether sessions may be built. */
  private readonly resident: WeightSessions | undefined;
  private opened = false;

  constructor(
    readonly name: ComponentName,
    private readonly graph: Uint8Array,
    private readonly device: DeviceName,
    private readonly options: ort.InferenceSession.SessionOptions,
    private readonly residencyContext?: ResidencyContext,
  ) {
    if (!residencyContext) return;
    this.resident = new WeightSessions({ ...residencyContext, create: (map) => this.createResident(map) });
    const data = new Set(DATA_INPUTS[this.name]);
    this.paramNames = [...graphInputTypes(graph).keys()].filter((n) => !data.has(n));
  }

  get residency(): WeightResidency {
    return this.resident ? 'session' : 'inputs';
  }

  get isOpen(): boolean {
    return this.resident ? this.opened : this.session !== undefined;
  }

  /** Sessions alive now: 1 with inputs residency; with session residency, one per weights map held. */
  get sessionCount(): number {
    return this.resident ? this.resident.size : Number(this.session !== undefined);
  }

  /** Parameter inputs of the graph (known once opened). */
  get parameters(): readonly string[] {
    return this.paramNames;
  }

  /** Opens the session; with session residency, builds the serving map's (if it has weights now). */
  async open(): Promise<void> {
    if (this.resident) {
      const current = this.residencyContext!.current();
      if (current) await this.resident.prepare(current);
      this.opened = true;
      return;
    }
    if (this.session) return;
    this.session = await this.create(this.graph, this.options);
    const data = new Set(DATA_INPUTS[this.name]);
    this.paramNames = this.session.inputNames.filter((n) => !data.has(n));
  }

  /** Checks that `weights` feeds every parameter input of the graph. */
  checkWeights(weights: WeightMap): void {
    const missing = this.paramNames.filter((n) => !weights.has(n));
    if (missing.length) {
      const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, ... (${missing.length} in all)` : '');
      throw new Error(`${this.name}: weights lack parameters the graph needs: ${shown}`);
    }
  }

  /**
   * Session residency: builds the session of `weights` beside the serving one, so that swapping
   * them in costs nothing and a failed build fails the update before anything changes. With
   * inputs residency, or while the sessions are released (wake builds them), nothing to do.
   */
  async prepare(weights: WeightMap): Promise<void> {
    if (this.resident && this.opened) await this.resident.prepare(weights);
  }

  /** After a weight change: sessions of maps no longer serving are released once unused. */
  weightsChanged(): void {
    this.resident?.retireStale();
  }

  async run(data: Record<string, HostTensor>, weights: WeightMap): Promise<Record<string, HostTensor>> {
    if (!this.isOpen) throw new Error(`${this.name}: the session is released (the worker is asleep); call wakeUp first`);
    // ONNX Runtime's CPU kernels take other paths for a batch of one (reductions, batched MatMul),
    // so a row's result would depend on its batch size: a lone row runs as two copies, the first kept.
    const lone = Object.values(data).every((t) => t.shape[0] === 1);
    const feeds: Record<string, ort.Tensor> = this.resident ? {} : { ...this.weightFeeds(weights) };
    for (const [k, v] of Object.entries(data)) feeds[k] = toOrt(lone ? twoCopies(v) : v);
    const out = this.resident
      ? await this.resident.run(weights, (s) => nativeCall(() => s.run(feeds)))
      : await nativeCall(() => this.session!.run(feeds));
    const result: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(out)) result[k] = lone ? firstRow(fromOrt(v)) : fromOrt(v);
    return result;
  }

  async release(): Promise<boolean> {
    if (this.resident) {
      if (!this.opened) return false;
      this.opened = false;
      await this.resident.releaseAll();
      return true;
    }
    if (!this.session) return false;
    const s = this.session;
    this.session = undefined;
    await nativeCall(() => s.release());
    return true;
  }

  private async create(graph: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
    try {
      return await nativeCall(() => ort.InferenceSession.create(graph, options));
    } catch (e) {
      throw providerError(this.device, this.name, e);
    }
  }

  /** A session whose initializers are `map`'s tensors (ONNX Runtime copies them in at build). */
  private createResident(map: WeightMap): Promise<ort.InferenceSession> {
    this.checkWeights(map);
    const { graph, options } = residentSession(this.graph, map, this.options);
    return this.create(graph, options);
  }

  private weightFeeds(weights: WeightMap): Record<string, ort.Tensor> {
    let feeds = this.feedsCache.get(weights);
    if (!feeds) {
      this.checkWeights(weights);
      feeds = {};
      for (const n of this.paramNames) feeds[n] = toOrt(weights.get(n)!);
      this.feedsCache.set(weights, feeds);
    }
    return feeds;
  }
}
