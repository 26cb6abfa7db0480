// Session residency (docs/gpu-design.md): a graph whose parameters are inputs (the model folder
// contract) rewritten into one whose parameters are initializers with external data, supplied
// from memory through SessionOptions.externalData. ONNX Runtime then copies them into the session
// once (to the device for CUDA) instead of being fed them on every run. Each tensor is its own
// "external file", so no buffer ever holds all the weights at once.
import onnxProto from 'onnx-proto';
import type { InferenceSession } from 'onnxruntime-node';
import type { DType, HostTensor } from '../tensors/tensor.ts';
import { ONNX_TO_DTYPE } from './graph-inputs.ts';

const { onnx } = onnxProto as unknown as { onnx: any };
const DTYPE_TO_ONNX = Object.fromEntries(Object.entries(ONNX_TO_DTYPE).map(([k, v]) => [v, Number(k)])) as Record<DType, number>;

export interface InitializerGraph {
  graph: Uint8Array;
  externalData: NonNullable<InferenceSession.SessionOptions['externalData']>;
}

/** `weights` names the parameter inputs to move; every other input stays an input. */
export function asExternalInitializers(graph: Uint8Array, weights: ReadonlyMap<string, HostTensor>): InitializerGraph {
  const model = onnx.ModelProto.decode(graph);
  const g = model.graph;
  const externalData: { path: string; data: Uint8Array }[] = [];
  const kept = [];
  for (const input of g.input) {
    const t = weights.get(input.name);
    if (!t) {
      kept.push(input);
      continue;
    }
    // The index keeps locations distinct whatever the names (a '/' in a name is not a folder here).
    const location = `w${externalData.length}.bin`;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    g.initializer.push(onnx.TensorProto.create({
      name: input.name, dataType: DTYPE_TO_ONNX[t.dtype], dims: t.shape,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: String(bytes.byteLength) }],
    }));
    externalData.push({ path: location, data: bytes });
  }
  g.input = kept;
  return { graph: onnx.ModelProto.encode(model).finish(), externalData };
}

