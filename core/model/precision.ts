// A model's precision: the float dtype its graphs take their parameters in and compute in
// (docs/gpu-design.md, "Half precision"). The folder decides it; config `dtype` only asserts it.
// Data inputs and outputs stay float32 in every precision (Casts inside the graphs), so latents,
// the scheduler step and log-probs stay float32 on the host.
import onnxProto from 'onnx-proto';
import type { DType } from '../tensors/tensor.ts';
import { graphInputTypes, ONNX_TO_DTYPE } from './graph-inputs.ts';
import { DATA_INPUTS, type ComponentName } from './manifest.ts';
import type { ModelSource } from './source.ts';

export const PRECISIONS = ['float32', 'float16', 'bfloat16'] as const;
export type Precision = (typeof PRECISIONS)[number];
export const PRECISION_DTYPE: Record<Precision, DType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };
/** ONNX TensorProto.DataType of each precision. */
export const PRECISION_ONNX: Record<Precision, number> = { float32: 1, float16: 10, bfloat16: 16 };
const BY_DTYPE = new Map(PRECISIONS.map((p) => [PRECISION_DTYPE[p], p]));
const { onnx } = onnxProto as unknown as { onnx: any };

/** The float dtypes a component's graph takes its parameters in (data inputs left out). */
export function parameterPrecisions(graph: Uint8Array, component: ComponentName): Set<Precision> {
  const data = new Set(DATA_INPUTS[component]);
  const out = new Set<Precision>();
  for (const [name, dtype] of graphInputTypes(graph)) {
    const p = dtype && BY_DTYPE.get(dtype);
    if (p && !data.has(name)) out.add(p);
  }
  return out;
}

/** The dtype of the graph's largest float initializer: the precision of a graph whose weights are fixed in it. */
function fixedWeightsPrecision(graph: Uint8Array): Precision | undefined {
  let best: { size: number; p: Precision } | undefined;
  for (const t of onnx.ModelProto.decode(graph).graph?.initializer ?? []) {
    const p = BY_DTYPE.get(ONNX_TO_DTYPE[t.dataType]);
    const size = (t.dims as number[]).reduce((a, b) => a * Number(b), 1);
    if (p && size > (best?.size ?? 0)) best = { size, p };
  }
  return best?.p;
}

/**
 * The model's precision: the one float dtype of its transformer's parameters (the denoiser is
 * where the compute is), or of its largest initializer when its weights are fixed in the graph.
 * A transformer mixing float dtypes in its parameters has none (undefined).
 */
export function modelPrecision(source: ModelSource): Precision | undefined {
  const graph = source.components.transformer.graph;
  const found = parameterPrecisions(graph, 'transformer');
  if (found.size > 1) return undefined;
  return found.size ? [...found][0] : fixedWeightsPrecision(graph) ?? 'float32';
}

/** Refuses a model whose precision is not the one the config asks for, naming both. */
export function checkPrecision(source: ModelSource, wanted: Precision | undefined): void {
  if (!wanted) return;
  const found = modelPrecision(source);
  if (found === wanted) return;
  const has = found ?? `mixed (${[...parameterPrecisions(source.components.transformer.graph, 'transformer')].join(', ')})`;
  throw new Error(`config dtype is '${wanted}', but model ${source.origin} is ${has}: its graphs fix the precision ` +
    `(parameters and compute), so the folder decides; write the model in ${wanted} (\`omni-worker dummy-model --dtype\`, or export it so) or drop dtype from the config`);
}

/** Whether any parameter of the graph is bfloat16, which onnxruntime-node cannot feed as an input. */
export function hasBf16Parameters(graph: Uint8Array, component: ComponentName): boolean {
  return parameterPrecisions(graph, component).has('bfloat16');
}
