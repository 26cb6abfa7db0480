// Entry of the inference thread: TypeScript sources run through tsx, in this thread too.
import { register } from 'tsx/esm/api';

register();
await import('./thread-entry.ts');
