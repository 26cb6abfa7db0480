// The hardware ceiling of data-parallel scaling: N bare ONNX Runtime loops (fleet-ceiling-loop.ts,
// the worker's transformer session and a worker's batch) running at once, each in its own thread
// as the data-parallel executor's workers are, against one loop alone. What N loops lose against N
// times one (memory bandwidth, the shared L3, all-core turbo, the hypervisor) is the machine's;
// what N workers lose beyond that is the executor's and the pipeline's.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

export interface LoopSpec {
  /** Model folder (the worker's). */
  model: string;
  /** ONNX Runtime intra-op threads per loop. */
  threads: number;
  /** Samples per run (rows: doubled under CFG). */
  samples: number;
  cfg: boolean;
  spinning: boolean;
  residency: 'inputs' | 'session';
  /** Seconds each loop runs, all starting together. */
  seconds: number;
}

export interface LoopsResult {
  loops: number;
  /** Transformer runs per second of each loop. */
  runsPerSecond: number[];
  /** Samples (of `spec.samples` per run) per second, all loops together. */
  samplesPerSecond: number;
}

/**
 * Pool threads of loop k pinned to their own processors, as ONNX Runtime's
 * `session.intra_op_thread_affinities` (1-based ids; the loop's own thread, which ONNX Runtime does
 * not pin, gets the first processor of its block by convention and is left to the OS).
 */
export function pinnedAffinities(loop: number, threads: number): string | undefined {
  if (threads < 2) return undefined;
  return Array.from({ length: threads - 1 }, (_, j) => String(loop * threads + j + 2)).join(';');
}

/** `loops` loops at once; `pin` gives each its own block of processors (when they fit). */
export async function runLoops(spec: LoopSpec, loops: number, pin = false): Promise<LoopsResult> {
  if (!Number.isInteger(loops) || loops < 1) throw new Error(`ceiling: loops must be a positive integer, got ${loops}`);
  if (pin && loops * spec.threads > availableParallelism()) {
    throw new Error(`ceiling: pinning ${loops} loops x ${spec.threads} threads needs ${loops * spec.threads} processors; this machine has ${availableParallelism()}`);
  }
  const control = new Int32Array(new SharedArrayBuffer(4));
  const threads: Worker[] = [];
  try {
    const answers = Array.from({ length: loops }, (_, k) => {
      const t = new Worker(new URL('./fleet-ceiling-thread.mjs', import.meta.url), {
        workerData: { spec: { ...spec, affinities: pin ? pinnedAffinities(k, spec.threads) : undefined }, control },
      });
      threads.push(t);
      let ready!: () => void;
      const isReady = new Promise<void>((r) => { ready = r; });
      const done = new Promise<{ runs: number; seconds: number }>((resolve, reject) => {
        t.on('message', (m: { kind: string; runs: number; seconds: number }) => (m.kind === 'ready' ? ready() : resolve(m)));
        t.once('error', reject);
        t.once('exit', (code) => reject(new Error(`ceiling loop ${k} exited (code ${code}) before it answered`)));
      });
      // A loop that fails before it is ready must not leave the others waiting for it.
      return { ready: Promise.race([isReady, done.then(() => undefined)]), done };
    });
    await Promise.all(answers.map((a) => a.ready));
    Atomics.store(control, 0, 1);
    Atomics.notify(control, 0);
    const results = await Promise.all(answers.map((a) => a.done));
    const runsPerSecond = results.map((r) => r.runs / r.seconds);
    return { loops, runsPerSecond, samplesPerSecond: runsPerSecond.reduce((a, b) => a + b, 0) * spec.samples };
  } finally {
    Atomics.store(control, 0, 1); // a loop still waiting (another failed) is released, then ended
    Atomics.notify(control, 0);
    await Promise.all(threads.map((t) => t.terminate()));
  }
}
