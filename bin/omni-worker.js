#!/usr/bin/env node
// The omni-worker command. Installed, it runs the compiled CLI (dist/). In a checkout, where the
// TypeScript sources sit beside it, it runs those through tsx (a devDependency): no build step.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const sources = new URL('../cli/main.ts', import.meta.url);
let cli;
if (existsSync(fileURLToPath(sources))) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(sources.href);
} else {
  cli = await import('../dist/cli/main.js');
}
await cli.main(process.argv);
