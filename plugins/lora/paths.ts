// The adapter path allowlist: an adapter folder must lie inside a configured root once every
// symlink is resolved. '..' segments are refused outright, relative paths are looked up under each
// root, and the files are opened without following a last-moment symlink.
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

const inside = (root: string, p: string) => {
  const rel = relative(root, p);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
};

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

export class PathAllowlist {
  /** Roots as given (absolute), for messages; their real paths are taken at each check. */
  constructor(readonly roots: readonly string[]) {}

  /** The real path of an adapter folder inside a root, or an error saying why not. */
  async resolveFolder(path: string): Promise<string> {
    if (!this.roots.length) throw new Error("addLora: loading adapters from paths is off; list allowed folders in the lora plugin's `roots` option");
    if (typeof path !== 'string' || !path) throw new Error('addLora: path must be a non-empty string');
    if (path.split(/[\\/]+/).includes('..')) throw new Error(`addLora: '..' is not allowed in adapter paths (${path})`);
    const realRoots = await Promise.all(this.roots.map((r) => realpath(r).catch(() => resolve(r))));
    let candidates: string[];
    if (isAbsolute(path)) {
      if (!this.roots.some((r, i) => inside(resolve(r), path) || inside(realRoots[i], path))) {
        throw new Error(`addLora: ${path} is outside the allowed roots (${this.roots.join(', ')})`);
      }
      candidates = [path];
    } else {
      candidates = realRoots.map((r) => join(r, path));
    }
    for (const c of candidates) {
      if (!(await exists(c))) continue;
      const real = await realpath(c);
      if (!realRoots.some((r) => inside(r, real))) {
        throw new Error(`addLora: ${path} leads outside the allowed roots through a symlink (it resolves to ${real})`);
      }
      if (!(await stat(real)).isDirectory()) throw new Error(`addLora: ${path} is not a folder (a PEFT adapter is a folder with adapter_config.json and adapter_model.safetensors)`);
      return real;
    }
    throw new Error(`addLora: no adapter folder ${path} under the allowed roots (${this.roots.join(', ')})`);
  }

  /** Reads a file of an allowed folder; the file itself may not be a symlink leading out. */
  async readFile(folder: string, name: string): Promise<Buffer> {
    const p = join(folder, name);
    let real: string;
    try {
      real = await realpath(p);
    } catch (e) {
      throw new Error(`addLora: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const realRoots = await Promise.all(this.roots.map((r) => realpath(r).catch(() => resolve(r))));
    if (!realRoots.some((r) => inside(r, real))) throw new Error(`addLora: ${p} leads outside the allowed roots through a symlink (it resolves to ${real})`);
    const fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }
}
