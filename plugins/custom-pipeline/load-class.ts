// Imports a pipeline class and checks that it is one. A changed file is imported afresh
// (the URL carries its modification time), so a pipeline can be edited and swapped in again.
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { TextToImagePipeline, type PipelineClass } from '../../core/public.ts';

export async function loadPipelineClass(realPath: string, exportName: string): Promise<PipelineClass> {
  const url = `${pathToFileURL(realPath).href}?t=${Math.floor(statSync(realPath).mtimeMs)}`;
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    throw new Error(`custom-pipeline: cannot import ${realPath}: ${(e as Error).message}`);
  }
  if (!(exportName in mod)) {
    throw new Error(`custom-pipeline: ${realPath} has no export '${exportName}' (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  const cls = mod[exportName];
  if (typeof cls !== 'function' || !(cls === TextToImagePipeline || cls.prototype instanceof TextToImagePipeline)) {
    throw new Error(`custom-pipeline: export '${exportName}' of ${realPath} is not a class extending TextToImagePipeline`);
  }
  return cls as PipelineClass;
}
