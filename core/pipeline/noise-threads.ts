// Seeded noise of large batches drawn by helper threads beside the calling one. A 512-sample
// rollout draws millions of normals (Box-Muller: a logarithm, a square root, a cosine and a sine
// per pair), the largest host cost of a rollout, and the calling thread would draw them alone while
// the machine's other cores idle. Each job is one (seed, stream) filling its own slice, so the bits
// do not depend on which thread drew them; the caller draws a share itself and waits for the rest
// (Atomics.wait: fillNoise stays synchronous, as the noise source's callers are).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fillGaussian } from './seeded-noise.ts';

export interface NoiseJob {
  seed: number;
  stream: number;
  /** Where the job's values go in the output, and how many. */
  offset: number;
  length: number;
}

/** Below this many values the calling thread draws alone: handing work over costs more. */
export const MIN_THREADED_VALUES = 1 << 17;
/** A helper silent this long is taken for dead: the caller draws its share and stops using helpers. */
const HELPER_TIMEOUT_MS = 30_000;
const MAX_HELPERS = 7;

class NoiseHelpers {
  private readonly threads: Worker[] = [];
  private started = 0;
  private failed = false;
  private shared = new SharedArrayBuffer(0);

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const t = new Worker(new URL('./noise-thread.mjs', import.meta.url));
      t.unref(); // the process may exit without closing them
      t.once('message', () => { this.started++; });
      t.once('error', () => this.fail());
      t.once('exit', () => this.fail());
      this.threads.push(t);
    }
  }

  /** Every helper has started and none has failed (until then the caller draws alone). */
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

  /** Splits the jobs into a share per helper and one for the caller, by values, in order. */
  fill(jobs: readonly NoiseJob[], out: Float32Array): void {
    const shares = split(jobs, this.threads.length + 1);
    const own = shares.pop()!;
    const sizes = shares.map((share) => share.reduce((n, j) => n + j.length, 0));
    const total = sizes.reduce((a, b) => a + b, 0);
    if (this.shared.byteLength < 4 * total) this.shared = new SharedArrayBuffer(4 * total);
    const done = new Int32Array(new SharedArrayBuffer(4 * shares.length));
    let at = 0;
    const starts = shares.map((share, slot) => {
      const start = at;
      const quads = new Float64Array(4 * share.length);
      share.forEach((j, k) => { quads.set([j.seed, j.stream, at, j.length], 4 * k); at += j.length; });
      this.threads[slot].postMessage({ jobs: quads, buffer: this.shared, done, slot });
      return start;
    });
    drawAll(own, out);
    const values = new Float32Array(this.shared);
    shares.forEach((share, slot) => {
      if (Atomics.wait(done, slot, 0, HELPER_TIMEOUT_MS) === 'timed-out' && Atomics.load(done, slot) === 0) {
        this.fail();
        drawAll(share, out);
        return;
      }
      let from = starts[slot];
      for (const j of share) {
        out.set(values.subarray(from, from + j.length), j.offset);
        from += j.length;
      }
    });
  }
}

function drawAll(jobs: readonly NoiseJob[], out: Float32Array): void {
  for (const j of jobs) fillGaussian(j.seed, j.stream, out.subarray(j.offset, j.offset + j.length));
}

/** `parts` runs of consecutive jobs with about equal numbers of values. */
function split(jobs: readonly NoiseJob[], parts: number): NoiseJob[][] {
  const total = jobs.reduce((n, j) => n + j.length, 0);
  const out: NoiseJob[][] = Array.from({ length: parts }, () => []);
  let seen = 0;
  for (const j of jobs) {
    out[Math.min(parts - 1, Math.floor((seen * parts) / total))].push(j);
    seen += j.length;
  }
  return out;
}

let helpers: NoiseHelpers | undefined;
let started: Promise<boolean> | undefined;

/** Helper threads: one fewer than the machine's cores (the caller draws too), at most MAX_HELPERS. */
function helperThreads(): NoiseHelpers | undefined {
  void startNoiseHelpers();
  return helpers?.ready ? helpers : undefined;
}

/**
 * Starts the helper threads (once per process); resolves true when they are ready, false on a
 * machine of one core or when one failed to start. A worker that will draw large batches calls it
 * as it loads its model, so that its first rollout is shared too.
 */
export function startNoiseHelpers(): Promise<boolean> {
  if (started) return started;
  const count = Math.min(MAX_HELPERS, availableParallelism() - 1);
  if (count < 1) return (started = Promise.resolve(false));
  const h = (helpers = new NoiseHelpers(count));
  started = new Promise((resolve) => {
    const poll = setInterval(() => {
      if (!h.ready && !h.broken) return;
      clearInterval(poll);
      resolve(h.ready);
    }, 5);
  });
  return started;
}

/**
 * Runs the jobs into `out`. Large batches are shared with helper threads once they have started
 * (they start on the first large batch, which the caller draws alone); the values are the same
 * whoever draws them.
 */
export function fillNoise(jobs: readonly NoiseJob[], out: Float32Array): void {
  const total = jobs.reduce((n, j) => n + j.length, 0);
  const threads = total >= MIN_THREADED_VALUES ? helperThreads() : undefined;
  if (threads) threads.fill(jobs, out);
  else drawAll(jobs, out);
}
