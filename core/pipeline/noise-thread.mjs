// A helper thread of core/pipeline/noise-threads.ts, plain JavaScript so that Node loads it as is:
// fills its share of a batch's seeded noise into shared memory, then counts itself done. Compiled
// (dist/), seeded-noise.js sits beside this file; from the TypeScript sources, tsx loads it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort } from 'node:worker_threads';

const compiled = new URL('./seeded-noise.js', import.meta.url);
let noise;
if (existsSync(fileURLToPath(compiled))) {
  noise = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  noise = await import(new URL('./seeded-noise.ts', import.meta.url).href);
}

// jobs: Float64Array of (seed, stream, offset, length) quadruples; offsets index `buffer` as float32.
parentPort.on('message', ({ jobs, buffer, done, slot }) => {
  const out = new Float32Array(buffer);
  for (let j = 0; j < jobs.length; j += 4) noise.fillGaussian(jobs[j], jobs[j + 1], out.subarray(jobs[j + 2], jobs[j + 2] + jobs[j + 3]));
  Atomics.store(done, slot, 1);
  Atomics.notify(done, slot);
});
parentPort.postMessage('ready');
