// Docs live in the repository: no document, comment or message points at a file outside it
// (a reader of the package has nothing beside it).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIP = new Set(['node_modules', 'dist', '.git', 'fixtures', 'results', 'out']);
const TEXT = /\.(md|ts|mjs|js|py|yaml)$/;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (SKIP.has(e.name) || e.name.startsWith('.')) return [];
    const p = join(dir, e.name);
    return e.isDirectory() ? files(p) : TEXT.test(e.name) ? [p] : [];
  });
}

describe('documentation links', () => {
  it('points only at files inside the repository', () => {
    const outside: string[] = [];
    for (const f of files(ROOT)) {
      if (f === fileURLToPath(import.meta.url)) continue;
      const text = readFileSync(f, 'utf8');
      const rel = relative(ROOT, f);
      // A path into a sibling folder of the checkout ("../shared/...") is outside by construction.
      for (const m of text.matchAll(/(?:^|[\s(`'"])((?:\.\.\/)+shared\/[\w./-]*)/g)) outside.push(`${rel}: ${m[1]}`);
      if (f.endsWith('.md')) {
        for (const m of text.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)) {
          const target = m[1];
          if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
          const abs = resolve(dirname(f), target);
          if (relative(ROOT, abs).startsWith('..') || !existsSync(abs)) outside.push(`${rel}: ${target}`);
        }
      }
    }
    expect(outside).toEqual([]);
  });
});
