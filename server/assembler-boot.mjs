// Entry of the server's assembler thread (assembler-entry.ts), plain JavaScript so that Node loads
// it as is. Compiled (dist/), assembler-entry.js sits beside this file; from the TypeScript
// sources, tsx (a devDependency) loads assembler-entry.ts.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('./assembler-entry.js', import.meta.url);
if (existsSync(fileURLToPath(compiled))) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('./assembler-entry.ts', import.meta.url).href);
}
