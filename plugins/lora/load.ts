// addLora's sources: a PEFT folder (through the path allowlist) or the trainer's in-memory
// tensors (named tensors or safetensors bytes) with a config object.
import { DTYPE_ARRAY, DTYPE_BYTES, numel, parseSafetensors, type DType, type HostTensor } from '../../core/public.ts';
import type { PathAllowlist } from './paths.ts';

export interface AdapterFiles {
  config: unknown;
  tensors: [string, HostTensor][];
  origin: string;
}

export async function readAdapterFolder(allow: PathAllowlist, path: string): Promise<AdapterFiles> {
  const folder = await allow.resolveFolder(path);
  const configText = (await allow.readFile(folder, 'adapter_config.json')).toString('utf8');
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw new Error(`addLora: ${folder}/adapter_config.json is not valid JSON: ${(e as Error).message}`);
  }
  const bytes = await allow.readFile(folder, 'adapter_model.safetensors');
  return { config, tensors: parseTensors(bytes, `${folder}/adapter_model.safetensors`), origin: folder };
}

export function readAdapterMemory(config: unknown, tensors: unknown): AdapterFiles {
  if (config === null || typeof config !== 'object') throw new Error('addLora: in-memory tensors need a config object (the adapter_config.json fields)');
  if (tensors instanceof Uint8Array) return { config, tensors: parseTensors(tensors, 'safetensors bytes'), origin: 'memory' };
  if (tensors === null || typeof tensors !== 'object' || ArrayBuffer.isView(tensors)) {
    throw new Error('addLora: tensors must be named tensors { key: { dtype, shape, data } } or safetensors bytes');
  }
  return { config, tensors: Object.entries(tensors).map(([k, t]) => [k, asTensor(k, t)]), origin: 'memory' };
}

function parseTensors(bytes: Uint8Array, what: string): [string, HostTensor][] {
  try {
    const file = parseSafetensors(bytes);
    return file.names.map((n) => [n, file.get(n)]);
  } catch (e) {
    throw new Error(`addLora: ${what}: ${(e as Error).message}`);
  }
}

function asTensor(key: string, t: unknown): HostTensor {
  const { dtype, shape, data } = (t ?? {}) as Record<string, unknown>;
  const ok = typeof dtype === 'string' && Object.hasOwn(DTYPE_BYTES, dtype) && Array.isArray(shape) &&
    shape.every((d) => Number.isSafeInteger(d) && d >= 0) && data instanceof DTYPE_ARRAY[dtype as DType] &&
    (data as HostTensor['data']).length === numel(shape as number[]);
  if (!ok) throw new Error(`addLora: tensor '${key}' must be { dtype, shape, data } with data of the dtype's array type and shape's size`);
  return { dtype: dtype as DType, shape: shape as number[], data: data as HostTensor['data'] };
}
