// Files and folders a plugin may open when a caller names them at run time (an adapter folder,
// a pipeline module): they must lie inside one of the folders the config allows (the roots).
// One semantics for every plugin:
// - a root itself counts as inside it;
// - a relative path is looked up under each root in turn, then under the config's folder; an
//   absolute path is taken as it is;
// - '..' segments and NUL characters are refused outright;
// - a path outside every root is refused with the same message whether it exists or not (no
//   probing of the file system), and nothing outside a root is ever stat'ed;
// - once every symlink is resolved, the real path must still lie inside a root's real path;
// - files are opened without following a last-moment symlink (O_NOFOLLOW).
import { constants } from 'node:fs';
import { realpath, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { openRegularFile } from './files/regular-file.ts';

/** Whether `p` is `root` or lies below it (both absolute). */
export function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

export interface AllowlistOptions {
  /** The config's folder: relative paths are also looked up there (after the roots). */
  baseDir?: string;
  /** Paths allowed although outside every root (a module the config itself names). */
  trusted?: readonly string[];
}

export class PathAllowlist {
  /**
   * Roots resolved against baseDir; each must exist and be a folder, or the error names it:
   * "<where>: roots[1] 'adapters' does not exist (resolved against /srv/config)".
   */
  static async open(roots: readonly string[], where: string, options: AllowlistOptions = {}): Promise<PathAllowlist> {
    const baseDir = options.baseDir ?? process.cwd();
    const absolute: string[] = [];
    for (const [i, r] of roots.entries()) {
      const abs = resolve(baseDir, r);
      const s = await stat(abs).catch(() => undefined);
      if (!s) throw new Error(`${where}: roots[${i}] '${r}' does not exist (resolved against ${baseDir})`);
      if (!s.isDirectory()) throw new Error(`${where}: roots[${i}] '${r}' is not a folder`);
      absolute.push(abs);
    }
    return new PathAllowlist(absolute, options);
  }

  /** Roots as given (absolute), for messages; their real paths are taken at each check. */
  constructor(readonly roots: readonly string[], private readonly options: AllowlistOptions = {}) {}

  private realRoots(): Promise<string[]> {
    return Promise.all(this.roots.map((r) => realpath(r).catch(() => resolve(r))));
  }

  /**
   * The real path of a file or folder inside a root, or an error that starts with `what`
   * ("addLora: ...") and says why not.
   */
  async resolve(path: string, kind: 'file' | 'folder', what: string): Promise<string> {
    if (typeof path !== 'string' || !path) throw new Error(`${what}: the path must be a non-empty string`);
    if (path.includes('\0')) throw new Error(`${what}: the path holds a NUL character`);
    if (path.split(/[\\/]+/).includes('..')) throw new Error(`${what}: '..' is not allowed in paths ('${path}')`);
    const realRoots = await this.realRoots();
    const trusted = this.options.trusted ?? [];
    const lexicallyInside = (p: string) => trusted.includes(p) || this.roots.some((r, i) => isInside(resolve(r), p) || isInside(realRoots[i], p));
    const candidates = isAbsolute(path)
      ? [path]
      : [...realRoots.map((r) => join(r, path)), ...(this.options.baseDir ? [resolve(this.options.baseDir, path)] : [])];
    const allowed = candidates.filter(lexicallyInside);
    const where = `the allowed roots (${this.roots.join(', ') || 'none'})`;
    if (isAbsolute(path) && !allowed.length) throw new Error(`${what}: '${path}' is outside ${where}`);
    for (const c of allowed) {
      if (!(await exists(c))) continue;
      const real = await realpath(c);
      if (!trusted.includes(real) && !realRoots.some((r) => isInside(r, real))) {
        throw new Error(`${what}: '${path}' leads outside ${where} through a symlink (it resolves to ${real})`);
      }
      const s = await stat(real);
      if (kind === 'folder' ? !s.isDirectory() : !s.isFile()) throw new Error(`${what}: '${path}' is not a ${kind}`);
      return real;
    }
    throw new Error(`${what}: no ${kind} '${path}' under ${where}`);
  }

  /** Reads a file of an allowed folder; the file itself may not be a symlink leading out. */
  async readFile(folder: string, name: string, what: string): Promise<Buffer> {
    const fh = await this.open(folder, name, what);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  /** Opens a file of an allowed folder for reading (checked as readFile checks); the caller closes it. */
  async open(folder: string, name: string, what: string): Promise<FileHandle> {
    const p = join(folder, name);
    let real: string;
    try {
      real = await realpath(p);
    } catch (e) {
      throw new Error(`${what}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const realRoots = await this.realRoots();
    if (!realRoots.some((r) => isInside(r, real))) throw new Error(`${what}: '${p}' leads outside the allowed roots through a symlink (it resolves to ${real})`);
    // Not a regular file (a FIFO would block the open until a writer appears): refused before reading.
    return openRegularFile(real, constants.O_NOFOLLOW).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`${what}: ${e.code === 'ENOTREGULAR' ? e.message : `cannot read ${p}: ${e.code ?? e.message}`}`);
    });
  }
}
