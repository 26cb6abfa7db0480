// Turns a graph whose parameters are inputs (the model folder contract) into one whose parameters
// are initializers with external data, supplied from memory through SessionOptions.externalData:
// the weights then live in the session (on the device for CUDA) instead of being fed every run.
// Each tensor is its own "external file", so no buffer holds all the weights at once.
import onnxProto from 'onnx-proto';
import type { InferenceSession } from 'onnxruntime-node';
import type { HostTensor } from '../core/tensors/tensor.ts';

const { onnx } = onnxProto as unknown as { onnx: any };
const ONNX_DTYPE: Record<string, number> = { F32: 1, F16: 10, BF16: 16 };

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
    const location = `${input.name}.bin`;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    g.initializer.push(onnx.TensorProto.create({
      name: input.name, dataType: ONNX_DTYPE[t.dtype], dims: t.shape,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: String(bytes.byteLength) }],
    }));
    externalData.push({ path: location, data: bytes });
  }
  g.input = kept;
  return { graph: onnx.ModelProto.encode(model).finish(), externalData };
}
