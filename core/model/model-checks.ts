// Load-time checks of a model against its own graphs, before any session opens or weight is
// installed: weights of the graph's dtype and static shape and finite, tokenizer and manifest
// sizes that the graph's data inputs accept, token ids inside the embedding table. Without them
// a bad model loads and every generate fails with a raw ONNX Runtime message; a wrong-shape
// weight would also become the schema that later loadWeights are checked against.
import onnxProto from 'onnx-proto';
import { COMPONENT_NAMES, DATA_INPUTS, type ComponentName } from './manifest.ts';
import type { ModelSource } from './source.ts';
import { describeNonFinite, firstNonFinite } from '../tensors/finite.ts';
import type { DType } from '../tensors/tensor.ts';

const { onnx } = onnxProto as unknown as { onnx: any };

/** ONNX TensorProto.DataType -> our dtype. */
const ONNX_DTYPE: Record<number, DType> = { 1: 'F32', 2: 'U8', 3: 'I8', 5: 'I16', 6: 'I32', 7: 'I64', 9: 'BOOL', 10: 'F16', 11: 'F64', 16: 'BF16' };

/** A dimension: its size when the graph fixes it, else its symbolic name (or '?'). */
type Dim = number | string;

interface GraphInfo {
  inputs: Map<string, { dtype: DType | undefined; dims: Dim[] }>;
  /** Rows of the table a Gather on input_ids reads (the vocabulary size), when the graph has one. */
  embedding?: { table: string; rows: number | undefined };
}

/** The image size the graphs fix, where their latent inputs have static height and width. */
export interface GraphBounds {
  fixedHeight?: number;
  fixedWidth?: number;
}

const SHOWN = 8;

function dimOf(d: any): Dim {
  if (d.dimParam) return String(d.dimParam);
  const v = Number(d.dimValue ?? 0);
  return v > 0 ? v : '?';
}

function readGraph(bytes: Uint8Array): GraphInfo {
  const graph = onnx.ModelProto.decode(bytes).graph;
  const inputs: GraphInfo['inputs'] = new Map();
  for (const i of graph.input) {
    const t = i.type?.tensorType;
    inputs.set(i.name, { dtype: ONNX_DTYPE[t?.elemType], dims: (t?.shape?.dim ?? []).map(dimOf) });
  }
  const gather = graph.node.find((n: any) => n.opType === 'Gather' && n.input[1] === 'input_ids');
  let embedding: GraphInfo['embedding'];
  if (gather) {
    const table = gather.input[0] as string;
    const init = graph.initializer.find((t: any) => t.name === table);
    embedding = { table, rows: init ? Number(init.dims[0]) : undefined };
  }
  return { inputs, embedding };
}

const shapeText = (dims: readonly Dim[]) => `[${dims.join(', ')}]`;

/** Checks the model; returns the image size its graphs fix. Throws one error listing every problem. */
export function checkModel(source: ModelSource): GraphBounds {
  const { spec, tokenizer } = source;
  const problems: string[] = [];
  const graphs: Partial<Record<ComponentName, GraphInfo>> = {};
  for (const name of COMPONENT_NAMES) {
    const c = source.components[name];
    if (!c) continue;
    let g: GraphInfo;
    try {
      g = graphs[name] = readGraph(c.graph);
    } catch (e) {
      problems.push(`${name}: the graph is not a readable ONNX model (${(e as Error).message})`);
      continue;
    }
    const data = new Set(DATA_INPUTS[name]);
    for (const d of data) if (!g.inputs.has(d)) problems.push(`${name}: the graph has no data input '${d}'`);
    for (const [input, info] of g.inputs) {
      if (data.has(input)) continue;
      const w = c.weights.get(input);
      if (!w) { problems.push(`${name}: the weights lack '${input}', a parameter of the graph`); continue; }
      if (info.dtype && w.dtype !== info.dtype) problems.push(`${name}: weight '${input}' is ${w.dtype}, the graph takes ${info.dtype}`);
      if (w.shape.length !== info.dims.length || info.dims.some((d, k) => typeof d === 'number' && d !== w.shape[k])) {
        problems.push(`${name}: weight '${input}' has shape [${w.shape.join(', ')}], the graph takes ${shapeText(info.dims)}`);
      }
      const at = firstNonFinite(w);
      if (at >= 0) problems.push(`${name}: weight '${input}' holds ${describeNonFinite(w, at)}`);
    }
    // A weight no graph input takes is a misnamed or foreign tensor: never dropped silently.
    const unused = [...c.weights.keys()].filter((k) => !g.inputs.has(k) || data.has(k));
    if (unused.length) {
      problems.push(`${name}: the weights hold ${unused.length} tensor(s) the graph takes no input for: ` +
        unused.slice(0, 4).map((k) => `'${k}'`).join(', ') + (unused.length > 4 ? ', ...' : ''));
    }
  }
  // Every data input is [batch, ...]; a static size must be the one the manifest and tokenizer give.
  const expect = (component: ComponentName, input: string, axis: number, want: number, what: string) => {
    const d = graphs[component]?.inputs.get(input)?.dims[axis];
    if (typeof d === 'number' && d !== want) problems.push(`${what} is ${want}, but the ${component} graph's ${input} takes ${d} on axis ${axis}`);
  };
  const L = tokenizer.maxLength;
  if (spec.text.maxLength !== L) problems.push(`model.json text.maxLength is ${spec.text.maxLength}, the tokenizer's maxLength ${L}`);
  expect('text_encoder', 'input_ids', 1, L, 'the tokenizer maxLength');
  expect('transformer', 'encoder_hidden_states', 1, L, 'the tokenizer maxLength');
  expect('transformer', 'encoder_hidden_states', 2, spec.text.hiddenSize, 'model.json text.hiddenSize');
  expect('transformer', 'pooled_projections', 1, spec.text.pooledSize, 'model.json text.pooledSize');
  const bounds: GraphBounds = {};
  const down = spec.latent.downscale;
  for (const [component, input] of [['transformer', 'hidden_states'], ['decoder', 'latent_sample']] as const) {
    expect(component, input, 1, spec.latent.channels, 'model.json latent.channels');
    const dims = graphs[component]?.inputs.get(input)?.dims ?? [];
    for (const [axis, key, image] of [[2, 'fixedHeight', spec.image.height], [3, 'fixedWidth', spec.image.width]] as const) {
      const d = dims[axis];
      if (typeof d !== 'number') continue;
      bounds[key] ??= d * down;
      if (image !== d * down) problems.push(`model.json image ${key === 'fixedHeight' ? 'height' : 'width'} is ${image}, but the ${component} graph's ${input} fixes ${d} latent rows x downscale ${down} = ${d * down}`);
    }
  }
  const emb = graphs.text_encoder?.embedding;
  const rows = emb?.rows ?? source.components.text_encoder.weights.get(emb?.table ?? '')?.shape[0];
  if (rows !== undefined) {
    const ids = [...Object.entries(tokenizer.vocab), ['(padId)', tokenizer.padId], ['(unkId)', tokenizer.unkId], ['(bosId)', tokenizer.bosId]] as const;
    const bad = ids.filter(([, id]) => id >= rows);
    if (bad.length) {
      problems.push(`the tokenizer has ids beyond the text encoder's ${rows}-row embedding '${emb!.table}': ` +
        bad.slice(0, 4).map(([w, id]) => `${w} = ${id}`).join(', ') + (bad.length > 4 ? `, ... (${bad.length} in all)` : ''));
    }
  }
  if (problems.length) {
    const more = problems.length > SHOWN ? `; ... (${problems.length} problems in all)` : '';
    throw new Error(`model ${source.origin} does not fit its graphs: ${problems.slice(0, SHOWN).join('; ')}${more}`);
  }
  return bounds;
}
