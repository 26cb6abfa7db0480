// Where a pipeline module may come from. The config names folders (roots); a module named at
// run time (reInitPipeline) must lie inside one of them once every symlink is resolved.
// Request paths never reach import() unchecked: no "..", no absolute path outside a root.
import { realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';

const MODULE_EXTENSIONS = new Set(['.ts', '.mts', '.js', '.mjs']);

/** Real paths of the allowlisted folders; each must exist. */
export function resolveRoots(roots: readonly string[], baseDir: string): string[] {
  return roots.map((r, i) => {
    let real: string;
    try {
      real = realpathSync(resolve(baseDir, r));
    } catch {
      throw new Error(`custom-pipeline: roots[${i}] '${r}' does not exist (resolved against ${baseDir})`);
    }
    if (!statSync(real).isDirectory()) throw new Error(`custom-pipeline: roots[${i}] '${r}' is not a folder`);
    return real;
  });
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * The real path of a module named at run time: relative to baseDir (as config paths are) or
 * absolute, and inside a root after symlinks are resolved; `trusted` (the config's own module) passes too.
 */
export function resolveAllowed(path: string, baseDir: string, roots: readonly string[], trusted: readonly string[] = []): string {
  if (path.includes('\0')) throw new Error('pipelineClass: the path holds a NUL character');
  if (path.split(/[\\/]/).includes('..')) throw new Error(`pipelineClass: '${path}' contains '..'; name a module inside an allowlisted root`);
  if (!MODULE_EXTENSIONS.has(extname(path))) throw new Error(`pipelineClass: '${path}' is not a module (.ts, .mts, .js or .mjs)`);
  const abs = resolve(baseDir, path);
  const lexicallyInside = roots.some((r) => inside(r, abs)) || trusted.includes(abs);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    // Same message whether outside or missing, for paths outside: no probing of the file system.
    if (!lexicallyInside) throw new Error(`pipelineClass: '${path}' is outside the allowlisted roots`);
    throw new Error(`pipelineClass: '${path}' does not exist`);
  }
  if (!roots.some((r) => inside(r, real)) && !trusted.includes(real)) {
    throw new Error(`pipelineClass: '${path}' is outside the allowlisted roots${lexicallyInside ? ' (a symlink leads out)' : ''}`);
  }
  if (!statSync(real).isFile()) throw new Error(`pipelineClass: '${path}' is not a file`);
  return real;
}
