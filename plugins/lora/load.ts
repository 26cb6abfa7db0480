// addLora's sources: a PEFT folder (through the path allowlist) or the trainer's in-memory
// tensors (named tensors or safetensors bytes) with a config object.
import { asTensor, parseSafetensors, readSafetensorsTensors, type HostTensor, type PathAllowlist } from '../../core/public.ts';

export interface AdapterFiles {
  config: unknown;
  tensors: [string, HostTensor][];
  origin: string;
}

export async function readAdapterFolder(allow: PathAllowlist, path: string): Promise<AdapterFiles> {
  if (!allow.roots.length) throw new Error("addLora: loading adapters from paths is off; list allowed folders in the lora plugin's `roots` option");
  const folder = await allow.resolve(path, 'folder', 'addLora');
  const configText = (await allow.readFile(folder, 'adapter_config.json', 'addLora')).toString('utf8');
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw new Error(`addLora: ${folder}/adapter_config.json is not valid JSON: ${(e as Error).message}`);
  }
  const file = await allow.open(folder, 'adapter_model.safetensors', 'addLora');
  let tensors: [string, HostTensor][];
  try {
    ({ tensors } = await readSafetensorsTensors(file)); // tensor by tensor: any size; closes the file
  } catch (e) {
    throw new Error(`addLora: ${folder}/adapter_model.safetensors: ${(e as Error).message}`);
  }
  return { config, tensors, origin: folder };
}

export function readAdapterMemory(config: unknown, tensors: unknown): AdapterFiles {
  if (config === null || typeof config !== 'object') throw new Error('addLora: in-memory tensors need a config object (the adapter_config.json fields)');
  if (tensors instanceof Uint8Array) return { config, tensors: parseTensors(tensors, 'safetensors bytes'), origin: 'memory' };
  if (tensors === null || typeof tensors !== 'object' || ArrayBuffer.isView(tensors)) {
    throw new Error('addLora: tensors must be named tensors { key: { dtype, shape, data } } or safetensors bytes');
  }
  return { config, tensors: Object.entries(tensors).map(([k, t]) => [k, asTensor(t, `addLora: tensor '${k}'`)]), origin: 'memory' };
}

function parseTensors(bytes: Uint8Array, what: string): [string, HostTensor][] {
  try {
    const file = parseSafetensors(bytes);
    return file.names.map((n) => [n, file.get(n)]);
  } catch (e) {
    throw new Error(`addLora: ${what}: ${(e as Error).message}`);
  }
}
