// Entry of the inference thread, plain JavaScript so that Node loads it as is. Compiled (dist/),
// thread-entry.js sits beside this file. Running the TypeScript sources (tests, dev tools in a
// checkout), tsx (a devDependency) loads thread-entry.ts.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('./thread-entry.js', import.meta.url);
if (existsSync(fileURLToPath(compiled))) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('./thread-entry.ts', import.meta.url).href);
}
