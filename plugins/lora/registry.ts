// Adapters and their merged weights under one byte budget. Merged maps are a cache (rebuilt from
// the adapter on demand) and go first; then unpinned adapters, least recently used first. Pinned
// adapters are never evicted, and an adapter that cannot fit beside them is refused.
import { type WeightMap } from '../../core/public.ts';
import type { Adapter } from './adapter.ts';
import { mergeAdapter } from './merge.ts';

interface Entry {
  adapter: Adapter;
  pinned: boolean;
  used: number;
  /** Merged maps by scale, each for the base map it was merged into. */
  merged: Map<number, { map: WeightMap; base: WeightMap; bytes: number; used: number }>;
}

export interface AdapterInfo {
  name: string;
  rank: number;
  alpha: number;
  useRslora: boolean;
  scaling: number;
  modules: string[];
  bytes: number;
  pinned: boolean;
  origin: string;
  /** Scales whose merged weights are cached. */
  mergedScales: number[];
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

export class AdapterRegistry {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;

  constructor(readonly budgetBytes: number) {}

  get usedBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.adapter.bytes + mergedBytes(e);
    return n;
  }

  get mergedBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += mergedBytes(e);
    return n;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Adds (or with `replace`, replaces) an adapter, evicting what the budget needs. */
  add(adapter: Adapter, opts: { pinned?: boolean; replace?: boolean } = {}): string[] {
    const old = this.entries.get(adapter.name);
    if (old && !opts.replace) throw new Error(`addLora: an adapter named '${adapter.name}' is loaded; removeLora it first or pass replace: true`);
    const pinned = opts.pinned ?? old?.pinned ?? false;
    let pinnedBytes = 0;
    for (const e of this.entries.values()) if (e.pinned && e !== old) pinnedBytes += e.adapter.bytes;
    if (pinnedBytes + adapter.bytes > this.budgetBytes) {
      throw new Error(`addLora: adapter '${adapter.name}' (${mb(adapter.bytes)}) does not fit the LoRA budget of ${mb(this.budgetBytes)} ` +
        `beside the pinned adapters (${mb(pinnedBytes)}); unpin some or raise the lora plugin's budgetBytes`);
    }
    if (old) this.entries.delete(adapter.name);
    const evicted = this.makeRoom(adapter.bytes);
    this.entries.set(adapter.name, { adapter, pinned, used: ++this.clock, merged: new Map() });
    return evicted;
  }

  remove(name: string): void {
    this.require(name, 'removeLora');
    this.entries.delete(name);
  }

  pin(name: string, pinned: boolean): void {
    this.require(name, pinned ? 'pinLora' : 'unpinLora').pinned = pinned;
  }

  /**
   * The transformer weights with adapter `name` merged in at `scale`, from the cache when it
   * was merged into this same base; cached when it fits the budget without evicting adapters.
   */
  merged(name: string, scale: number, base: WeightMap): WeightMap {
    const e = this.require(name, 'request lora');
    e.used = ++this.clock;
    if (scale === 0) return base;
    const hit = e.merged.get(scale);
    if (hit && hit.base === base) {
      hit.used = this.clock;
      return hit.map;
    }
    e.merged.delete(scale);
    const { map, bytes } = mergeAdapter(base, e.adapter, scale);
    // Cached only when it fits beside the adapters: a merged map never evicts an adapter.
    if (this.usedBytes - this.mergedBytes + bytes <= this.budgetBytes) {
      this.evictMerged(bytes);
      e.merged.set(scale, { map, base, bytes, used: this.clock });
    }
    return map;
  }

  /** Drops every merged map (the base weights changed or went away); returns their bytes. */
  clearMerged(): number {
    const n = this.mergedBytes;
    for (const e of this.entries.values()) e.merged.clear();
    return n;
  }

  list(): AdapterInfo[] {
    return [...this.entries.values()].sort((a, b) => b.used - a.used).map(({ adapter: a, pinned, merged }) => ({
      name: a.name, rank: a.config.r, alpha: a.config.alpha, useRslora: a.config.useRslora, scaling: a.config.scaling,
      modules: a.modules.map((m) => m.module), bytes: a.bytes, pinned, origin: a.origin, mergedScales: [...merged.keys()],
    }));
  }

  /** Throws, naming `what` asked and what is loaded, unless adapter `name` is loaded. */
  assertLoaded(name: string, what: string): void {
    this.require(name, what);
  }

  private require(name: string, what: string): Entry {
    const e = this.entries.get(name);
    if (!e) {
      const known = this.names();
      throw new Error(`${what}: no adapter named '${name}' is loaded (loaded: ${known.length ? known.join(', ') : 'none'}; adapters may be evicted under the byte budget)`);
    }
    return e;
  }

  /** Evicts merged maps, then unpinned adapters (LRU), until `bytes` more fit. */
  private makeRoom(bytes: number): string[] {
    this.evictMerged(bytes);
    const evicted: string[] = [];
    const lru = [...this.entries.values()].filter((e) => !e.pinned).sort((a, b) => a.used - b.used);
    while (this.usedBytes + bytes > this.budgetBytes && lru.length) {
      const e = lru.shift()!;
      this.entries.delete(e.adapter.name);
      evicted.push(e.adapter.name);
    }
    return evicted;
  }

  /** Evicts merged maps (LRU) until `bytes` more fit or none is left. */
  private evictMerged(bytes: number): void {
    const all = [...this.entries.values()].flatMap((e) => [...e.merged].map(([scale, m]) => ({ e, scale, used: m.used }))).sort((a, b) => a.used - b.used);
    while (this.usedBytes + bytes > this.budgetBytes && all.length) {
      const { e, scale } = all.shift()!;
      e.merged.delete(scale);
    }
  }
}

function mergedBytes(e: Entry): number {
  let n = 0;
  for (const m of e.merged.values()) n += m.bytes;
  return n;
}
