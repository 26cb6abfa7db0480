// Imports a pipeline class and checks that it is one. A changed file is imported afresh
// (the URL carries its modification time), so a pipeline can be edited and swapped in again.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TextToImagePipeline, type PipelineClass } from '../../core/public.ts';

export async function loadPipelineClass(realPath: string, exportName: string): Promise<PipelineClass> {
  const url = `${pathToFileURL(realPath).href}?t=${Math.floor(statSync(realPath).mtimeMs)}`;
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    const cjs = loadedAsCommonJs(realPath);
    throw new Error(`custom-pipeline: cannot import ${realPath}: ${(e as Error).message}${cjs ? `. ${cjs.cause}; ${cjs.fix}` : ''}`);
  }
  if (!(exportName in mod)) {
    throw new Error(`custom-pipeline: ${realPath} has no export '${exportName}' (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  const cls = mod[exportName];
  if (typeof cls !== 'function' || !(cls === TextToImagePipeline || cls.prototype instanceof TextToImagePipeline)) {
    const copy = typeof cls === 'function' ? foreignBase(cls) : undefined;
    if (copy) {
      const cjs = loadedAsCommonJs(realPath);
      const why = cjs ? `${cjs.cause}, so its imports load a second copy of core; ${cjs.fix}`
        : 'it imports core from another copy of omni-worker (another install or path); import it from the one the worker runs';
      throw new Error(`custom-pipeline: export '${exportName}' of ${realPath} extends ${copy}, not the one this worker runs: ${why}`);
    }
    throw new Error(`custom-pipeline: export '${exportName}' of ${realPath} is not a class extending TextToImagePipeline`);
  }
  return cls as PipelineClass;
}

/** "a second copy of TextToImagePipeline" when a class's ancestor has that name but another identity. */
function foreignBase(cls: Function): string | undefined {
  for (let p = Object.getPrototypeOf(cls); p && p !== Function.prototype; p = Object.getPrototypeOf(p)) {
    if (p.name === TextToImagePipeline.name) return `a second copy of ${TextToImagePipeline.name}`;
  }
  return undefined;
}

/**
 * "Node loaded it as CommonJS (...)" with the fix, when Node's rules make the file CommonJS: a .cts
 * or .cjs file, or a .ts or .js file whose nearest package.json has no "type": "module". A pipeline
 * module must be ESM: as CommonJS its TypeScript is not compiled, or its imports load core again.
 */
function loadedAsCommonJs(path: string): { cause: string; fix: string } | undefined {
  const ext = extname(path);
  const pkg = nearestPackageJson(dirname(path));
  let type: unknown;
  try {
    type = pkg ? (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: unknown }).type : undefined;
  } catch {
    type = undefined; // an unreadable package.json: Node would refuse it in its own words
  }
  if (!(ext === '.cts' || ext === '.cjs' || ((ext === '.ts' || ext === '.js') && type !== 'module'))) return undefined;
  const where = pkg ? `its package.json (${pkg}) has no "type": "module"` : 'no package.json above it says "type": "module"';
  return {
    cause: `Node loaded it as CommonJS (${where})`,
    fix: `name it ${ext === '.js' || ext === '.cjs' ? '.mjs' : '.mts'}, or put it in a package with "type": "module"`,
  };
}

function nearestPackageJson(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const p = join(d, 'package.json');
    if (existsSync(p)) return p;
    if (dirname(d) === d) return undefined;
  }
}
