// Session residency (docs/gpu-design.md): the weights live in the session (as initializers), so
// a weights map (a version, or an adapter merged into one) is a session of its own. Sessions are
// keyed by the map: a batch keeps the map it started with, so it keeps that session. A session
// no longer serving is retired and released once the work in flight when it was retired has
// ended (and, if later work uses it again, once that work has ended too).
import type * as ort from 'onnxruntime-node';
import type { WeightMap } from './weights.ts';
import { nativeCall } from '../executor/native-gate.ts';

interface Entry {
  readonly map: WeightMap;
  readonly session: Promise<ort.InferenceSession>;
  /** Runs in progress. */
  runs: number;
  /** prepare() calls waiting for the build: the entry is not evicted meanwhile. */
  holds: number;
  used: number;
  retired: boolean;
  /** Retired and due for release when its last run ends. */
  due: boolean;
}

export interface WeightSessionsOptions {
  /** Builds the session whose initializers are `map`'s tensors. */
  create(map: WeightMap): Promise<ort.InferenceSession>;
  /** The map serving now (the weight store's); its session is never retired. */
  current(): WeightMap | undefined;
  /** Resolves once the work in flight at the call (rollouts, scoring) has ended. */
  settled(): Promise<void>;
  /** Sessions kept besides the serving one and those in use (merged adapters), LRU. */
  spare: number;
}

export class WeightSessions {
  private readonly entries = new Map<WeightMap, Entry>();
  private readonly releasing = new Set<Promise<void>>();
  private clock = 0;

  constructor(private readonly opts: WeightSessionsOptions) {}

  /** Sessions built or being built (retired ones not yet released included). */
  get size(): number {
    return this.entries.size;
  }

  /** Runs `use` on the session of `map`, building it on first use. */
  async run<T>(map: WeightMap, use: (session: ort.InferenceSession) => Promise<T>): Promise<T> {
    const e = this.entry(map);
    e.runs++;
    try {
      return await use(await e.session);
    } finally {
      e.runs--;
      if (e.due && e.runs === 0 && e.holds === 0) void this.dispose(e);
    }
  }

  /** Builds the session of `map` ahead of its use (a weight update before it is swapped in). */
  async prepare(map: WeightMap): Promise<void> {
    const e = this.entry(map);
    e.holds++;
    try {
      await e.session;
    } finally {
      e.holds--;
    }
  }

  /** After a weight change: every session but the serving map's is retired. */
  retireStale(): void {
    const current = this.opts.current();
    for (const e of this.entries.values()) {
      if (e.map === current) e.retired = e.due = false;
      else if (e.holds === 0 && !e.retired) this.retire(e);
    }
  }

  /** Releases every session now (sleep, close); returns how many there were. */
  async releaseAll(): Promise<number> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => release(e)));
    await Promise.all([...this.releasing]);
    return all.length;
  }

  private entry(map: WeightMap): Entry {
    const found = this.entries.get(map);
    if (found) {
      found.used = ++this.clock;
      // Used again after retirement (by work that started later): released after that work too.
      if (found.retired) this.scheduleRelease(found);
      return found;
    }
    const session = this.opts.create(map);
    const e: Entry = { map, session, runs: 0, holds: 0, used: ++this.clock, retired: false, due: false };
    this.entries.set(map, e);
    // A failed build is forgotten (its caller gets the error): the next use tries again.
    session.catch(() => { if (this.entries.get(map) === e) this.entries.delete(map); });
    this.evictSpare(e);
    return e;
  }

  /** Retires the least recently used sessions beyond the spare count (not the serving one, not `fresh`). */
  private evictSpare(fresh: Entry): void {
    const current = this.opts.current();
    const extra = [...this.entries.values()].filter((e) => e.map !== current && !e.retired);
    const evictable = extra.filter((e) => e !== fresh && e.holds === 0).sort((a, b) => a.used - b.used);
    for (let n = extra.length; n > this.opts.spare && evictable.length; n--) this.retire(evictable.shift()!);
  }

  private retire(e: Entry): void {
    e.retired = true;
    this.scheduleRelease(e);
  }

  private scheduleRelease(e: Entry): void {
    void this.opts.settled().then(() => this.dispose(e));
  }

  private async dispose(e: Entry): Promise<void> {
    // Swapped in as the serving map meanwhile, or released already (releaseAll).
    if (!e.retired || e.map === this.opts.current() || this.entries.get(e.map) !== e) return;
    if (e.runs > 0 || e.holds > 0) {
      e.due = true;
      return;
    }
    this.entries.delete(e.map);
    const p = release(e);
    this.releasing.add(p);
    await p;
    this.releasing.delete(p);
  }
}

/**
 * Releases an entry's session. A build that failed has nothing to release (its error went to its
 * caller); a release refused because the worker is closing leaves the memory to the process's end.
 */
async function release(e: Entry): Promise<void> {
  const session = await e.session.catch(() => undefined);
  if (session) await nativeCall(() => session.release()).catch(() => undefined);
}
