// A thread of bench/fleet-ceiling.ts, plain JavaScript so that Node loads it as is: tsx loads the
// TypeScript loop beside it.
import { register } from 'tsx/esm/api';

register();
await import(new URL('./fleet-ceiling-loop.ts', import.meta.url).href);
