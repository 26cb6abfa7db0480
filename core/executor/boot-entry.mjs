// Loads a thread's entry module, plain JavaScript so that Node loads it as is. Compiled (dist/),
// NAME.js sits beside the boot file; running the TypeScript sources (tests, dev tools in a
// checkout), tsx (a devDependency) loads NAME.ts.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Imports `name`.js beside `bootUrl` when compiled, else `name`.ts through tsx. */
export async function loadEntry(bootUrl, name) {
  const compiled = new URL(`./${name}.js`, bootUrl);
  if (existsSync(fileURLToPath(compiled))) return import(compiled.href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(new URL(`./${name}.ts`, bootUrl).href);
}
