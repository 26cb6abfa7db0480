#!/usr/bin/env node
// The omni-worker command: the TypeScript CLI run through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
await main(process.argv);
