// A call waits for the inference thread to take it up, which it does between native calls unless
// synchronous code blocks it (a plugin's endless loop). Past a deadline the caller gives the call
// up; shared memory settles the race so a call given up is never run late: the thread marks each
// call started before it checks whether it was given up, the caller marks it given up before it
// checks whether it started (calls start in id order, so two words suffice).
const STARTED = 0;
const ABANDONED = 1;

export class StartWatch {
  private readonly words: Int32Array;

  constructor(readonly buffer = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT)) {
    this.words = new Int32Array(buffer);
  }

  /** Caller's side, at the deadline: true when the call had not started and never will. */
  abandon(id: number): boolean {
    if (Atomics.load(this.words, ABANDONED) < id) Atomics.store(this.words, ABANDONED, id);
    return Atomics.load(this.words, STARTED) < id;
  }

  /** Thread's side, as a call arrives: false when the caller gave it up (it must not run). */
  begin(id: number): boolean {
    Atomics.store(this.words, STARTED, id);
    return Atomics.load(this.words, ABANDONED) < id;
  }
}
