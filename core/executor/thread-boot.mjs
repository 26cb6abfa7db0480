// Entry of the inference thread (thread-entry.ts): boot-entry.mjs loads it compiled or through tsx.
import { loadEntry } from './boot-entry.mjs';

await loadEntry(import.meta.url, 'thread-entry');
