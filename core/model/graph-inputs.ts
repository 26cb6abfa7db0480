// The element types of a graph's inputs, read from the ONNX bytes, so that the folder loader can
// hand each parameter over in the dtype the graph takes (the graphs are small: parameters are inputs).
import onnxProto from 'onnx-proto';
import type { DType } from '../tensors/tensor.ts';

const { onnx } = onnxProto as unknown as { onnx: any };

// TensorProto.DataType -> safetensors dtype, for the types a parameter can have.
export const ONNX_TO_DTYPE: Record<number, DType> = { 1: 'F32', 2: 'U8', 3: 'I8', 5: 'I16', 6: 'I32', 7: 'I64', 9: 'BOOL', 10: 'F16', 11: 'F64', 16: 'BF16' };

/** Input name -> dtype (undefined for a type no safetensors dtype names). */
export function graphInputTypes(graph: Uint8Array): Map<string, DType | undefined> {
  const model = onnx.ModelProto.decode(graph);
  const out = new Map<string, DType | undefined>();
  for (const input of model.graph?.input ?? []) out.set(input.name, ONNX_TO_DTYPE[input.type?.tensorType?.elemType]);
  return out;
}
