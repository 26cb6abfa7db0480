// WeightSessions (session residency's bookkeeping) with stand-in sessions: which session a run
// gets, when a retired one is released, the spare bound, and a failed build.
import { describe, expect, it } from 'vitest';
import type * as ort from 'onnxruntime-node';
import { WeightSessions } from '../core/model/weight-sessions.ts';
import type { WeightMap } from '../core/model/weights.ts';

interface Fake { map: WeightMap; released: boolean }

function setup(spare = 1) {
  const built: Fake[] = [];
  let current: WeightMap | undefined;
  let inFlight: Promise<unknown>[] = [];
  let fail: Error | undefined;
  const sessions = new WeightSessions({
    create: async (map) => {
      if (fail) throw fail;
      const s: Fake = { map, released: false };
      built.push(s);
      return { release: async () => { s.released = true; } } as unknown as ort.InferenceSession & Fake;
    },
    current: () => current,
    settled: async () => { await Promise.allSettled(inFlight); },
    spare,
  });
  const live = () => built.filter((s) => !s.released).map((s) => s.map);
  const flush = () => new Promise((r) => setTimeout(r, 0));
  return {
    sessions, built, live, flush,
    setCurrent(m: WeightMap | undefined) { current = m; sessions.retireStale(); },
    track(p: Promise<unknown>) { inFlight.push(p); return p; },
    clearInFlight() { inFlight = []; },
    failWith(e: Error | undefined) { fail = e; },
  };
}

let maps = 0;
/** A distinct map (deep equality tells them apart too). */
const map = (): WeightMap => new Map([['id', { dtype: 'F32', shape: [1], data: new Float32Array([++maps]) }]]);

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => { open = r; });
  return { opened, open };
}

describe('WeightSessions', () => {
  it('builds one session per weights map and reuses it', async () => {
    const t = setup();
    const a = map();
    t.setCurrent(a);
    await t.sessions.prepare(a);
    await t.sessions.run(a, async () => 1);
    await t.sessions.run(a, async () => 2);
    expect(t.built.length).toBe(1);
    expect(t.sessions.size).toBe(1);
  });

  it('keeps a replaced session for the work in flight, and releases it once that work ends', async () => {
    const t = setup(0);
    const [a, b] = [map(), map()];
    t.setCurrent(a);
    await t.sessions.prepare(a);
    const batch = gate();
    // A batch holding map a: two runs with a weight update in between.
    const running = t.track((async () => {
      await t.sessions.run(a, async () => 0);
      await batch.opened;
      await t.sessions.run(a, async () => 0);
    })());
    await t.sessions.prepare(b);
    t.setCurrent(b);
    await t.flush();
    expect(t.live()).toEqual([a, b]); // the batch's session survives the swap
    batch.open();
    await running;
    await t.flush();
    expect(t.built.length).toBe(2); // the batch's second run did not rebuild
    expect(t.live()).toEqual([b]);
  });

  it('releases a retired session used again by later work only once that work ends too', async () => {
    const t = setup(0);
    const [a, b] = [map(), map()];
    t.setCurrent(a);
    await t.sessions.prepare(a);
    t.setCurrent(b); // a retired; nothing in flight
    const later = gate();
    const using = t.track(t.sessions.run(a, async () => { await later.opened; })); // before its release ran
    await t.flush();
    expect(t.live()).toContain(a);
    later.open();
    await using;
    await t.flush();
    expect(t.live()).not.toContain(a);
    expect(t.built.filter((s) => s.map === a).length).toBe(1);
  });

  it('keeps at most `spare` sessions besides the serving one, least recently used released first', async () => {
    const t = setup(1);
    const [base, x, y] = [map(), map(), map()];
    t.setCurrent(base);
    await t.sessions.prepare(base);
    await t.sessions.prepare(x);
    await t.sessions.prepare(y);
    await t.flush();
    expect(t.live()).toEqual([base, y]);
    await t.sessions.run(x, async () => 0); // rebuilt, y goes
    await t.flush();
    expect(t.live()).toEqual([base, x]);
    expect(t.built.length).toBe(4);
  });

  it('forgets a failed build, so that the next use builds again', async () => {
    const t = setup();
    const a = map();
    t.failWith(new Error('out of device memory'));
    await expect(t.sessions.prepare(a)).rejects.toThrow('out of device memory');
    expect(t.sessions.size).toBe(0);
    t.failWith(undefined);
    await t.sessions.run(a, async () => 0);
    expect(t.live()).toEqual([a]);
  });

  it('releaseAll releases every session at once, in use or retired', async () => {
    const t = setup(2);
    const [a, b, c] = [map(), map(), map()];
    t.setCurrent(a);
    for (const m of [a, b, c]) await t.sessions.prepare(m);
    t.track(new Promise(() => {})); // work that never ends does not hold a sleep back
    t.setCurrent(b);
    expect(await t.sessions.releaseAll()).toBe(3);
    expect(t.live()).toEqual([]);
    expect(t.sessions.size).toBe(0);
  });
});
