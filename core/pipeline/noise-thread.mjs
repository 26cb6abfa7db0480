// A helper thread of core/pipeline/noise-threads.ts, plain JavaScript so that Node loads it as is:
// takes jobs of a fill from the shared counter until none is left (noise-threads.ts says how).
// Compiled (dist/), noise-work.js sits beside this file; from the TypeScript sources, tsx loads it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort } from 'node:worker_threads';

const compiled = new URL('./noise-work.js', import.meta.url);
let work;
if (existsSync(fileURLToPath(compiled))) {
  work = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  work = await import(new URL('./noise-work.ts', import.meta.url).href);
}
parentPort.on('message', (fill) => work.takeJobs(fill));
parentPort.postMessage('ready');
