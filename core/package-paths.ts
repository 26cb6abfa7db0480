// Where the package's own files (models/, rewards' data) are, whether this code runs from the
// TypeScript sources (repository root) or compiled (dist/): the nearest folder up holding a
// package.json. A bare `new URL('./models', import.meta.url)` would point into dist/ once compiled.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`omni-worker: no package.json above ${from}; cannot find the package's files`);
  }
}

export const PACKAGE_ROOT = packageRoot(dirname(fileURLToPath(import.meta.url)));
