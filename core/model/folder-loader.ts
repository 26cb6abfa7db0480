// The 'onnx' load format: a model folder (docs/model-folder.md).
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describeZodError } from '../validation.ts';
import { modelSpecSchema, tokenizerSpecSchema, COMPONENT_NAMES, type ComponentName } from './manifest.ts';
import type { ComponentSource, ModelSource } from './source.ts';
import type { WeightMap } from './weights.ts';
import { graphInputTypes } from './graph-inputs.ts';
import { readSafetensorsTensors, toFloat32 } from '../tensors/safetensors.ts';
import type { DType, HostTensor } from '../tensors/tensor.ts';
import { readRegularFile } from '../files/regular-file.ts';

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = (await readRegularFile(path)).toString('utf8');
  } catch (e) {
    throw new Error(`cannot read the ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`the ${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Reads a weights file tensor by tensor (no whole-file buffer: files over 2 GiB load, and peak
 * memory stays near the weights' size). F16/BF16 tensors of parameters the graph takes as float32
 * widen to float32 here, one at a time: the runtime runs float32 graphs (`inputTypes` from
 * graphInputTypes; without it, tensors keep their dtype).
 */
export async function readWeights(path: string, inputTypes?: ReadonlyMap<string, DType | undefined>): Promise<WeightMap> {
  let tensors: [string, HostTensor][];
  try {
    ({ tensors } = await readSafetensorsTensors(path));
  } catch (e) {
    throw new Error(`cannot read weights ${path}: ${(e as Error).message}`);
  }
  const map = new Map<string, HostTensor>();
  for (const [name, t] of tensors) {
    const half = t.dtype === 'F16' || t.dtype === 'BF16';
    map.set(name, half && inputTypes?.get(name) === 'F32' ? { dtype: 'F32', shape: t.shape, data: toFloat32(t) } : t);
  }
  return map;
}

// Protobuf caps one message at 2 GiB, so a graph file over that is never a whole ONNX model: its
// weights belong in .safetensors as graph inputs. Said before readFile fails with a bare size error.
const MAX_GRAPH_BYTES = 2 ** 31 - 1;

async function readGraph(path: string, component: string): Promise<Uint8Array> {
  try {
    const { size } = await stat(path);
    if (size > MAX_GRAPH_BYTES) {
      throw new Error(`it is ${size} bytes, over ONNX's 2 GiB limit for one file: graphs take their weights as inputs from .safetensors (docs/model-folder.md)`);
    }
    return await readRegularFile(path);
  } catch (e) {
    throw new Error(`cannot read the ${component} graph ${path}: ${(e as Error).message}`);
  }
}

export async function loadModelFolder(dir: string): Promise<ModelSource> {
  const manifestPath = join(dir, 'model.json');
  const parsed = modelSpecSchema.safeParse(await readJson(manifestPath, 'model manifest'));
  if (!parsed.success) throw new Error(`invalid model manifest ${manifestPath}: ${describeZodError(parsed.error)}`);
  const spec = parsed.data;
  const tokPath = join(dir, spec.tokenizer);
  const tok = tokenizerSpecSchema.safeParse(await readJson(tokPath, 'tokenizer'));
  if (!tok.success) throw new Error(`invalid tokenizer ${tokPath}: ${describeZodError(tok.error)}`);

  const present = COMPONENT_NAMES.filter((n) => spec.components[n]);
  const graphs: Partial<Record<ComponentName, Uint8Array>> = {};
  for (const n of present) graphs[n] = await readGraph(join(dir, spec.components[n]!.graph), n);
  const inputTypes = Object.fromEntries(present.map((n) => {
    try {
      return [n, graphInputTypes(graphs[n]!)];
    } catch (e) {
      throw new Error(`the ${n} graph ${join(dir, spec.components[n]!.graph)} is not an ONNX model: ${(e as Error).message}`);
    }
  }));
  const readAllWeights = async () => {
    const out: Partial<Record<ComponentName, WeightMap>> = {};
    for (const n of present) {
      const w = spec.components[n]!.weights;
      out[n] = w ? await readWeights(join(dir, w), inputTypes[n]) : new Map();
    }
    return out;
  };
  const weights = await readAllWeights();
  const components: Partial<Record<ComponentName, ComponentSource>> = {};
  for (const n of present) components[n] = { graph: graphs[n]!, weights: weights[n]! };
  return {
    spec,
    tokenizer: tok.data,
    components: components as ModelSource['components'],
    origin: dir,
    reloadWeights: readAllWeights,
  };
}
