// Seeded noise of large batches drawn by helper threads beside the calling one. A 512-sample
// rollout draws millions of normals (Box-Muller: a logarithm, a square root, a cosine and a sine
// per pair), the largest host cost of a rollout, and the calling thread would draw them alone while
// the machine's other cores idle. Each job is one (seed, stream) filling its own slice, so the bits
// do not depend on which thread drew them; the caller takes jobs too and waits (Atomics.wait) only
// for those helpers hold: fillNoise stays synchronous, as the noise source's callers are.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fillGaussian } from './seeded-noise.ts';
import { DONE, takeJobs, type SharedFill } from './noise-work.ts';

export interface NoiseJob {
  seed: number;
  stream: number;
  /** Where the job's values go in the output, and how many. */
  offset: number;
  length: number;
}

/** Below this many values the calling thread draws alone: handing work over costs more. */
export const MIN_THREADED_VALUES = 1 << 17;
/** A job a helper holds this long is taken for lost: the caller draws it and stops using helpers. */
const HELPER_TIMEOUT_MS = 30_000;
const MAX_HELPERS = 7;
const START_WAIT_MS = 60_000;

class NoiseHelpers {
  private readonly threads: Worker[] = [];
  private started = 0;
  private failed = false;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      let t: Worker;
      try {
        t = new Worker(new URL('./noise-thread.mjs', import.meta.url));
      } catch (e) {
        this.fail();
        throw e;
      }
      t.unref(); // the process may exit without closing them
      t.once('message', () => { this.started++; });
      t.once('error', () => this.fail());
      t.once('exit', () => this.fail());
      this.threads.push(t);
    }
  }

  /** Every helper has started and none has failed. */
  get ready(): boolean {
    return !this.failed && this.started === this.threads.length;
  }

  get broken(): boolean {
    return this.failed;
  }

  private fail(): void {
    this.failed = true;
    for (const t of this.threads) void t.terminate();
  }

  /**
   * The caller and every helper take jobs from one shared counter; the caller then waits only for
   * the jobs helpers still hold. Every fill has its own shared memory: a helper that reads its
   * message late finds no job left and touches nothing else.
   */
  fill(jobs: readonly NoiseJob[], out: Float32Array): void {
    const quads = new Float64Array(new SharedArrayBuffer(8 * 4 * jobs.length));
    let at = 0;
    jobs.forEach((j, k) => { quads.set([j.seed, j.stream, at, j.length], 4 * k); at += j.length; });
    const fill: SharedFill = {
      control: new Int32Array(new SharedArrayBuffer(8)),
      jobs: quads,
      finished: new Int32Array(new SharedArrayBuffer(4 * jobs.length)),
      values: new Float32Array(new SharedArrayBuffer(4 * at)),
    };
    for (const t of this.threads) t.postMessage(fill);
    takeJobs(fill);
    const { control, finished, values } = fill;
    for (let done = Atomics.load(control, DONE); done < jobs.length; done = Atomics.load(control, DONE)) {
      if (Atomics.wait(control, DONE, done, HELPER_TIMEOUT_MS) !== 'timed-out') continue;
      // A helper holds a job and does not finish it: draw what is missing here, and stop using helpers.
      this.fail();
      jobs.forEach((j, k) => { if (!Atomics.load(finished, k)) fillGaussian(j.seed, j.stream, values.subarray(quads[4 * k + 2], quads[4 * k + 2] + j.length)); });
      break;
    }
    jobs.forEach((j, k) => out.set(values.subarray(quads[4 * k + 2], quads[4 * k + 2] + j.length), j.offset));
  }
}

function drawAll(jobs: readonly NoiseJob[], out: Float32Array): void {
  for (const j of jobs) fillGaussian(j.seed, j.stream, out.subarray(j.offset, j.offset + j.length));
}

let helpers: NoiseHelpers | undefined;
let started: Promise<boolean> | undefined;

/** Helper threads: one fewer than the machine's cores (the caller draws too), at most MAX_HELPERS. */
function helperThreads(): NoiseHelpers | undefined {
  void startNoiseHelpers();
  // Used before they have all started too: one that has not yet takes no job.
  return helpers && !helpers.broken ? helpers : undefined;
}

/**
 * Starts the helper threads (once per process); resolves true when they are ready, false on a
 * machine of one core, when one failed to start, or when they have not started within a minute
 * (they are used as soon as they start, whatever this answered). A worker that will draw large
 * batches calls it as it loads its model, so that its first rollout is shared too.
 */
export function startNoiseHelpers(): Promise<boolean> {
  if (started) return started;
  const count = Math.min(MAX_HELPERS, availableParallelism() - 1);
  if (count < 1) return (started = Promise.resolve(false));
  let h: NoiseHelpers;
  try {
    h = helpers = new NoiseHelpers(count);
  } catch {
    // Threads refused here (a sandbox, a bundle without noise-thread.mjs): the caller draws alone.
    return (started = Promise.resolve(false));
  }
  started = new Promise((resolve) => {
    // Polled (the helpers' own events may come in any order), for at most START_WAIT_MS: a process
    // is never held open by a helper that neither starts nor fails.
    const since = Date.now();
    const poll = setInterval(() => {
      if (!h.ready && !h.broken && Date.now() - since < START_WAIT_MS) return;
      clearInterval(poll);
      resolve(h.ready);
    }, 5);
  });
  return started;
}

/**
 * Runs the jobs into `out`. Large batches are shared with helper threads (started on the first
 * one, if startNoiseHelpers was not called before); the values are the same whoever draws them.
 */
export function fillNoise(jobs: readonly NoiseJob[], out: Float32Array): void {
  const total = jobs.reduce((n, j) => n + j.length, 0);
  const threads = total >= MIN_THREADED_VALUES ? helperThreads() : undefined;
  if (threads) threads.fill(jobs, out);
  else drawAll(jobs, out);
}
