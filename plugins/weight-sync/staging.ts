// Weight updates are built as new maps (the current map's tensors, then the update's) and swapped
// in together: one version bump per commit, and a batch in flight keeps the maps it started with.
import { type ComponentName, type HostTensor, type WeightMap, type WeightSet, type WeightStore } from '../../core/public.ts';

export type ComponentUpdate = ReadonlyMap<string, HostTensor>;

/**
 * New maps for the updated components. A component whose weights are gone (deep sleep) has no
 * tensors to keep, so its update must name every parameter; otherwise nothing is built.
 */
export function buildMaps(store: WeightStore, updates: ReadonlyMap<ComponentName, ComponentUpdate>): WeightSet {
  const out: WeightSet = {};
  for (const [component, update] of updates) {
    const base = store.get(component);
    const params = store.parameters(component)!;
    if (!base) {
      const missing = [...params.keys()].filter((n) => !update.has(n));
      if (missing.length) {
        const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? ', ...' : '');
        throw new Error(`loadWeights: the ${component} has no weights now (dropped by a level-2 sleep), so a partial update has nothing to complete it: ` +
          `${missing.length} of ${params.size} parameters missing (${shown}). Send the full state dict (or, if it held the checkpoint's weights, wakeUp({ tags: ['weights'] }) first). Nothing applied.`);
      }
    }
    // Parameter order stays the schema's; the update's tensors replace the current ones by name.
    const map = new Map<string, HostTensor>();
    for (const name of params.keys()) map.set(name, update.get(name) ?? base!.get(name)!);
    out[component] = map as WeightMap;
  }
  return out;
}

/** Buckets of a transfer in progress (loadWeights with bucket: true), committed by finishWeightUpdate. */
export class WeightStaging {
  private readonly staged = new Map<ComponentName, Map<string, HostTensor>>();

  /** Adds a checked bucket; a name staged twice keeps the later tensor. */
  stage(component: ComponentName, tensors: ComponentUpdate): void {
    const map = this.staged.get(component) ?? new Map<string, HostTensor>();
    for (const [n, t] of tensors) map.set(n, t);
    this.staged.set(component, map);
  }

  /** Moves another staging's tensors in (theirs win on a name staged in both, as later buckets do). */
  absorb(other: WeightStaging): void {
    for (const [c, m] of other.staged) this.stage(c, m);
    other.staged.clear();
  }

  /** Staged tensors by component. */
  summary(): Partial<Record<ComponentName, number>> {
    return Object.fromEntries([...this.staged].map(([c, m]) => [c, m.size]));
  }

  get size(): number {
    let n = 0;
    for (const m of this.staged.values()) n += m.size;
    return n;
  }

  /**
   * Applies every staged bucket at once; on error nothing is applied and the buckets stay. Buckets
   * staged while the new maps are readied (store.prepare) stay staged for the next commit.
   */
  async commit(store: WeightStore, readied: (maps: WeightSet) => Promise<number>): Promise<number> {
    const taken = new Map(this.staged);
    const maps = buildMaps(store, taken);
    this.staged.clear();
    try {
      return await readied(maps);
    } catch (e) {
      // Back under what was staged meanwhile (a later bucket's tensor wins, as in stage()).
      const later = [...this.staged];
      this.staged.clear();
      for (const [c, m] of taken) this.stage(c, m);
      for (const [c, m] of later) this.stage(c, m);
      throw e;
    }
  }

  clear(): number {
    const n = this.size;
    this.staged.clear();
    return n;
  }
}
