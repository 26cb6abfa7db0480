// Builds one worker and closes it: bench/fleet.ts times this as a child process (the start cost of
// a process-per-device executor) against one more inference thread.
import { createWorker } from '../index.ts';

const threads = Number(process.argv[2] ?? 1);
const w = await createWorker({ threads });
await w.close();
