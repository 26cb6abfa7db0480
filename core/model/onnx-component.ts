// One ONNX graph and its session. Parameters are graph inputs, fed by name from a WeightMap,
// so one session serves every weights version and merged adapter without a rebuild.
import * as ort from 'onnxruntime-node';
import { DATA_INPUTS, type ComponentName } from './manifest.ts';
import { providerError, type DeviceName } from './execution-provider.ts';
import type { WeightMap } from './weights.ts';
import type { HostTensor, DType } from '../tensors/tensor.ts';
import { nativeCall } from '../executor/native-gate.ts';

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  F32: 'float32', F16: 'float16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const HOST_TYPE: Partial<Record<ort.Tensor.Type, DType>> = Object.fromEntries(
  Object.entries(ORT_TYPE).map(([k, v]) => [v, k]),
) as Partial<Record<ort.Tensor.Type, DType>>;

export function toOrt(t: HostTensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new Error(`dtype ${t.dtype} cannot be fed to ONNX Runtime`);
  return new ort.Tensor(type, t.data as never, t.shape as number[]);
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

  constructor(
    readonly name: ComponentName,
    private readonly graph: Uint8Array,
    private readonly device: DeviceName,
    private readonly options: ort.InferenceSession.SessionOptions,
  ) {}

  get isOpen(): boolean {
    return this.session !== undefined;
  }

  /** Parameter inputs of the graph (known once opened). */
  get parameters(): readonly string[] {
    return this.paramNames;
  }

  async open(): Promise<void> {
    if (this.session) return;
    try {
      this.session = await nativeCall(() => ort.InferenceSession.create(this.graph, this.options));
    } catch (e) {
      throw providerError(this.device, this.name, e);
    }
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

  async run(data: Record<string, HostTensor>, weights: WeightMap): Promise<Record<string, HostTensor>> {
    if (!this.session) throw new Error(`${this.name}: the session is released (the worker is asleep); call wakeUp first`);
    // ONNX Runtime's CPU kernels take other paths for a batch of one (reductions, batched MatMul),
    // so a row's result would depend on its batch size: a lone row runs as two copies, the first kept.
    const lone = Object.values(data).every((t) => t.shape[0] === 1);
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds(weights) };
    for (const [k, v] of Object.entries(data)) feeds[k] = toOrt(lone ? twoCopies(v) : v);
    const session = this.session;
    const out = await nativeCall(() => session.run(feeds));
    const result: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(out)) result[k] = lone ? firstRow(fromOrt(v)) : fromOrt(v);
    return result;
  }

  async release(): Promise<boolean> {
    if (!this.session) return false;
    const s = this.session;
    this.session = undefined;
    await nativeCall(() => s.release());
    return true;
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
