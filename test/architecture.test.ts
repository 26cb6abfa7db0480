// The rule of the house: core/ imports no plugin, and a plugin imports core only through its
// public surface (core/public.ts), so that plugins stay swappable and core stays plugin-agnostic.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const IMPORT = /(?:import|export)[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

function tsFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2]).filter((s) => s.startsWith('.'))
    .map((s) => relative(root, resolve(dirname(join(root, file)), s)));
}

describe('architecture', () => {
  it('core imports no plugin', () => {
    const bad = tsFiles('core').flatMap((f) => imports(f).filter((i) => i.startsWith('plugins/')).map((i) => `${f} -> ${i}`));
    expect(bad).toEqual([]);
  });

  it('plugins import core only through core/public.ts, and no other plugin', () => {
    const bad = tsFiles('plugins').flatMap((f) => imports(f)
      .filter((i) => (i.startsWith('core/') && i !== 'core/public.ts') ||
        (i.startsWith('plugins/') && f !== 'plugins/builtin.ts' && i.split('/')[1] !== f.split('/')[1]))
      .map((i) => `${f} -> ${i}`));
    expect(bad).toEqual([]);
  });
});
