// The 'onnx' load format: a model folder (docs/model-folder.md).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeZodError } from '../validation.ts';
import { modelSpecSchema, tokenizerSpecSchema, COMPONENT_NAMES, type ComponentName } from './manifest.ts';
import type { ComponentSource, ModelSource } from './source.ts';
import type { WeightMap } from './weights.ts';
import { parseSafetensors } from '../tensors/safetensors.ts';
import type { HostTensor } from '../tensors/tensor.ts';

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`the ${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export async function readWeights(path: string): Promise<WeightMap> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`cannot read weights ${path}: ${(e as Error).message}`);
  }
  let file;
  try {
    file = parseSafetensors(bytes);
  } catch (e) {
    throw new Error(`weights ${path}: ${(e as Error).message}`);
  }
  const map = new Map<string, HostTensor>();
  for (const name of file.names) map.set(name, file.get(name));
  return map;
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
  const readAllWeights = async () => {
    const out: Partial<Record<ComponentName, WeightMap>> = {};
    for (const n of present) {
      const w = spec.components[n]!.weights;
      out[n] = w ? await readWeights(join(dir, w)) : new Map();
    }
    return out;
  };
  const weights = await readAllWeights();
  const components: Partial<Record<ComponentName, ComponentSource>> = {};
  for (const n of present) {
    const graphPath = join(dir, spec.components[n]!.graph);
    let graph: Uint8Array;
    try {
      graph = await readFile(graphPath);
    } catch (e) {
      throw new Error(`cannot read the ${n} graph ${graphPath}: ${(e as Error).message}`);
    }
    components[n] = { graph, weights: weights[n]! };
  }
  return {
    spec,
    tokenizer: tok.data,
    components: components as ModelSource['components'],
    origin: dir,
    reloadWeights: readAllWeights,
  };
}
