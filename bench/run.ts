// npm run bench: every benchmark, one after another, each in its own process.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const runner = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const extra = process.argv.slice(2);
for (const name of ['core.ts', 'rl-overhead.ts', 'weights.ts', 'serve.ts']) {
  if (!existsSync(here + name)) continue;
  console.log(`\n=== bench/${name} ${extra.join(' ')}`);
  execFileSync(process.execPath, [runner, here + name, ...extra], { stdio: 'inherit' });
}
