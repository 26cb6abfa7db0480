// Entry of the server's assembler thread (assembler-entry.ts): boot-entry.mjs loads it compiled or
// through tsx.
import { loadEntry } from '../core/executor/boot-entry.mjs';

await loadEntry(import.meta.url, 'assembler-entry');
