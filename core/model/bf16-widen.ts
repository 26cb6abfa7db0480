// ONNX Runtime's CPU provider has no bfloat16 kernels (MatMul, Add, Tanh, Softmax, ReduceMean ...
// all fail to build; only data movement like Transpose and Reshape exists), while the CUDA
// provider has them for the heavy ops. So a bfloat16 graph runs as written on CUDA, and elsewhere
// is rewritten at load to compute in float32: each bfloat16 parameter keeps its dtype (the host
// copy stays bfloat16) and is Cast to float32 where it enters, every other bfloat16 type in the
// graph becomes float32. bfloat16 -> float32 is exact, so this is the bfloat16 model computed in
// float32; it costs ~1 ms (graphs hold no weights).
import onnxProto from 'onnx-proto';
import { bf16ToFloat } from '../tensors/dtype-convert.ts';
import type { DeviceName } from './execution-provider.ts';

const { onnx } = onnxProto as unknown as { onnx: any };
const FLOAT = 1;
const BFLOAT16 = 16;
const { AttributeType } = onnx.AttributeProto;

/** The graph as the device runs it: as written on CUDA; with bfloat16 compute widened elsewhere. */
export function graphForDevice(graph: Uint8Array, device: DeviceName): Uint8Array {
  return device === 'cuda' ? graph : widenBf16Compute(graph);
}

/** bfloat16 TensorProto values -> a float32 TensorProto of the same name and shape. */
function widenTensor(t: any): any {
  let bits: number[];
  if (t.rawData?.length) {
    const raw = t.rawData as Uint8Array;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    bits = Array.from({ length: raw.byteLength / 2 }, (_, i) => view.getUint16(2 * i, true));
  } else {
    bits = (t.int32Data ?? []).map(Number); // ONNX keeps bfloat16 bits in int32_data when not raw
  }
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) throw new Error(`bfloat16 initializer '${t.name}' has external data, which the float32 rewrite cannot read`);
  return onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: FLOAT, floatData: bits.map(bf16ToFloat) });
}

/** Returns the graph unchanged (the same bytes) when nothing in it is bfloat16. */
export function widenBf16Compute(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph;
  let changed = false;
  const retype = (vi: any) => {
    const tt = vi.type?.tensorType;
    if (tt?.elemType === BFLOAT16) { tt.elemType = FLOAT; changed = true; }
  };
  // Parameters (bfloat16 inputs): fed as they are, Cast to float32 where they enter.
  const renamed = new Map<string, string>();
  const casts: any[] = [];
  for (const input of g.input) {
    if (input.type?.tensorType?.elemType !== BFLOAT16) continue;
    const wide = `${input.name}::float32`;
    renamed.set(input.name, wide);
    casts.push(onnx.NodeProto.create({ opType: 'Cast', input: [input.name], output: [wide], name: wide, attribute: [onnx.AttributeProto.create({ name: 'to', type: AttributeType.INT, i: FLOAT })] }));
  }
  const inputNames = new Set(g.input.map((i: any) => i.name));
  g.initializer = g.initializer.map((t: any) => {
    if (t.dataType !== BFLOAT16 || inputNames.has(t.name)) return t;
    changed = true;
    return widenTensor(t);
  });
  for (const node of g.node) {
    node.input = node.input.map((n: string) => renamed.get(n) ?? n);
    for (const a of node.attribute) {
      if (a.type === AttributeType.GRAPH || a.type === AttributeType.GRAPHS) {
        throw new Error(`node '${node.name || node.opType}' holds a subgraph, which the bfloat16 -> float32 rewrite does not reach: run this model with device 'cuda'`);
      }
      if ((a.name === 'to' || a.name === 'dtype') && a.type === AttributeType.INT && Number(a.i) === BFLOAT16) { a.i = FLOAT; changed = true; }
      if (a.type === AttributeType.TENSOR && a.t?.dataType === BFLOAT16) { a.t = widenTensor(a.t); changed = true; }
    }
  }
  g.valueInfo.forEach(retype);
  g.output.forEach(retype);
  if (!changed && !casts.length) return bytes;
  g.node = [...casts, ...g.node];
  return onnx.ModelProto.encode(model).finish();
}
