// Weights by component and PyTorch state-dict name. A WeightMap is never mutated once built:
// updates build a new map and swap it in whole, so a batch in flight keeps a consistent set.
import type { ComponentName } from './manifest.ts';
import type { HostTensor } from '../tensors/tensor.ts';

export type WeightMap = ReadonlyMap<string, HostTensor>;
export type WeightSet = Partial<Record<ComponentName, WeightMap>>;

export function weightBytes(map: WeightMap | undefined): number {
  let n = 0;
  for (const t of map?.values() ?? []) n += t.data.byteLength;
  return n;
}

/** The worker's current weights and their version (stamped on every rollout). */
export class WeightStore {
  private current: WeightSet = {};
  private versionCounter = 0;
  private readonly listeners = new Set<(changed: readonly ComponentName[]) => void>();

  get version(): number {
    return this.versionCounter;
  }

  get set(): WeightSet {
    return this.current;
  }

  get(component: ComponentName): WeightMap | undefined {
    return this.current[component];
  }

  /** Installs the initial weights (version stays; not an update). */
  install(set: WeightSet): void {
    this.current = { ...set };
  }

  /** Swaps in new maps for some components at once and bumps the version. */
  replace(update: WeightSet): number {
    this.current = { ...this.current, ...update };
    this.versionCounter += 1;
    const changed = Object.keys(update) as ComponentName[];
    for (const l of this.listeners) l(changed);
    return this.versionCounter;
  }

  /** Drops every component's weights (deep sleep). */
  drop(): number {
    const freed = Object.values(this.current).reduce((s, m) => s + weightBytes(m), 0);
    this.current = {};
    return freed;
  }

  /** Called after each replace(): caches that depend on weights invalidate themselves here. */
  onChange(listener: (changed: readonly ComponentName[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
