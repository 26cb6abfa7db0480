// Core's one path allowlist (lora's adapter folders, custom-pipeline's modules): whatever path
// a caller names, what it resolves to lies inside a root once symlinks are resolved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PathAllowlist, isInside } from '../core/path-allowlist.ts';

let dir: string;
let root: string;
let outside: string;
let allow: PathAllowlist;

beforeAll(async () => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'omni-allowlist-')));
  root = join(dir, 'root');
  outside = join(dir, 'outside');
  mkdirSync(join(root, 'a', 'deep'), { recursive: true });
  mkdirSync(join(outside, 'dir'), { recursive: true });
  writeFileSync(join(root, 'a', 'f.ts'), '');
  writeFileSync(join(root, 'b.ts'), '');
  writeFileSync(join(outside, 'secret.ts'), '');
  symlinkSync(join(root, 'a'), join(root, 'link-in'));
  symlinkSync(outside, join(root, 'link-out'));
  symlinkSync(join(outside, 'secret.ts'), join(root, 'file-out.ts'));
  // The config's folder is `dir`: relative paths are looked up under the root, then there.
  allow = await PathAllowlist.open(['root'], 'test', { baseDir: dir });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SEGMENTS = ['a', 'deep', 'f.ts', 'b.ts', 'link-in', 'link-out', 'file-out.ts', 'secret.ts', 'dir', 'root', 'outside', '..', '.', 'nope'];
const relativePath = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 5 }).map((s) => s.join('/'));
const anyPath = fc.oneof(relativePath, relativePath.map((p) => join(dir, p)), relativePath.map((p) => `${root}/${p}`), relativePath.map((p) => `${outside}/${p}`));

describe('PathAllowlist', () => {
  it('never resolves to anything outside the root, and refuses every path with ..', async () => {
    await fc.assert(fc.asyncProperty(anyPath, fc.constantFrom('file' as const, 'folder' as const), async (path, kind) => {
      let resolved: string | undefined;
      let error: Error | undefined;
      try {
        resolved = await allow.resolve(path, kind, 'test');
      } catch (e) {
        error = e as Error;
      }
      if (path.split('/').includes('..')) expect(error?.message).toMatch(/^test: '\.\.' is not allowed in paths/);
      if (resolved !== undefined) {
        expect(isInside(root, resolved)).toBe(true);
        expect(realpathSync(resolved)).toBe(resolved);
        expect(kind === 'file' ? statSync(resolved).isFile() : statSync(resolved).isDirectory()).toBe(true);
      } else {
        expect(error!.message.startsWith('test: ')).toBe(true);
      }
    }), { numRuns: 300 });
  });

  it('finds every existing path made of segments that stay inside, relative or absolute', async () => {
    const inside = fc.array(fc.constantFrom('a', 'deep', 'f.ts', 'b.ts', 'link-in', '.'), { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
    await fc.assert(fc.asyncProperty(inside, fc.boolean(), async (rel, absolute) => {
      const full = join(root, rel);
      if (!existsSync(full)) return;
      const kind = statSync(full).isFile() ? 'file' : 'folder';
      const path = absolute ? full : rel;
      expect(await allow.resolve(path, kind, 'test')).toBe(realpathSync(full));
    }), { numRuns: 200 });
  });

  it('counts a root itself as inside it', async () => {
    await expect(allow.resolve(root, 'folder', 'test')).resolves.toBe(root);
    await expect(allow.resolve('.', 'folder', 'test')).resolves.toBe(root);
    await expect(allow.resolve('root', 'folder', 'test')).resolves.toBe(root); // relative to the config's folder
  });

  it('says the same for a path outside whether it exists or not', async () => {
    await expect(allow.resolve(join(outside, 'secret.ts'), 'file', 'test')).rejects.toThrow(`test: '${join(outside, 'secret.ts')}' is outside the allowed roots (${root})`);
    await expect(allow.resolve(join(outside, 'gone.ts'), 'file', 'test')).rejects.toThrow(`test: '${join(outside, 'gone.ts')}' is outside the allowed roots (${root})`);
    await expect(allow.resolve('outside/secret.ts', 'file', 'test')).rejects.toThrow(`test: no file 'outside/secret.ts' under the allowed roots (${root})`);
    await expect(allow.resolve('outside/gone.ts', 'file', 'test')).rejects.toThrow(`test: no file 'outside/gone.ts' under the allowed roots (${root})`);
  });

  it('refuses symlinks that lead out, naming where they lead', async () => {
    await expect(allow.resolve('file-out.ts', 'file', 'test')).rejects.toThrow(`test: 'file-out.ts' leads outside the allowed roots (${root}) through a symlink (it resolves to ${join(outside, 'secret.ts')})`);
    await expect(allow.resolve('link-out/dir', 'folder', 'test')).rejects.toThrow('through a symlink');
    await expect(allow.readFile(join(root, 'a'), '../file-out.ts', 'test')).rejects.toThrow('through a symlink');
  });

  it('checks its roots when opened', async () => {
    await expect(PathAllowlist.open(['root', 'nope'], "plugin 'x'", { baseDir: dir })).rejects.toThrow(`plugin 'x': roots[1] 'nope' does not exist (resolved against ${dir})`);
    await expect(PathAllowlist.open(['root/b.ts'], "plugin 'x'", { baseDir: dir })).rejects.toThrow("plugin 'x': roots[0] 'root/b.ts' is not a folder");
  });
});
