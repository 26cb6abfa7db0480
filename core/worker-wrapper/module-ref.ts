// Resolves "path/to/module.ts#Export" references from the config (never from a request body).
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export function parseModuleRef(ref: string, defaultExport = 'default'): { path: string; exportName: string } {
  const hash = ref.lastIndexOf('#');
  return hash > 0 ? { path: ref.slice(0, hash), exportName: ref.slice(hash + 1) } : { path: ref, exportName: defaultExport };
}

export async function importExport(path: string, exportName: string, baseDir: string, what: string): Promise<unknown> {
  const abs = isAbsolute(path) ? path : resolve(baseDir, path);
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(abs).href);
  } catch (e) {
    throw new Error(`cannot import ${what} module ${abs}: ${(e as Error).message}`);
  }
  if (!(exportName in mod)) {
    throw new Error(`${what} module ${abs} has no export '${exportName}' (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  return mod[exportName];
}
