// One fill of noise-threads.ts in shared memory, worked on by the caller and the helpers alike:
// each takes the next job from a shared counter until none is left, so a helper that is slow to
// get a core costs at most the job it holds, and the caller never waits for work it could do.
import { fillGaussian } from './seeded-noise.ts';

/** Control words: the next job to take, and how many are done. */
export const NEXT = 0;
export const DONE = 1;

export interface SharedFill {
  /** Int32Array [NEXT, DONE]. */
  control: Int32Array;
  /** Per job: (seed, stream, offset into values, length). */
  jobs: Float64Array;
  /** Per job: 1 once its values are written. */
  finished: Int32Array;
  values: Float32Array;
}

export function takeJobs({ control, jobs, finished, values }: SharedFill): void {
  const n = finished.length;
  for (let k = Atomics.add(control, NEXT, 1); k < n; k = Atomics.add(control, NEXT, 1)) {
    const offset = jobs[4 * k + 2];
    fillGaussian(jobs[4 * k], jobs[4 * k + 1], values.subarray(offset, offset + jobs[4 * k + 3]));
    Atomics.store(finished, k, 1);
    if (Atomics.add(control, DONE, 1) + 1 === n) Atomics.notify(control, DONE);
  }
}
