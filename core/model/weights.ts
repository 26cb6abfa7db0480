// Weights by component and PyTorch state-dict name. A WeightMap is never mutated once built:
// updates build a new map and swap it in whole, so a batch in flight keeps a consistent set.
import type { ComponentName } from './manifest.ts';
import type { DType, HostTensor } from '../tensors/tensor.ts';

export type WeightMap = ReadonlyMap<string, HostTensor>;
export type WeightSet = Partial<Record<ComponentName, WeightMap>>;

/** A parameter's dtype and shape: what a weight update by that name must match. */
export interface ParameterInfo {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export function weightBytes(map: WeightMap | undefined): number {
  let n = 0;
  for (const t of map?.values() ?? []) n += t.data.byteLength;
  return n;
}

/** The worker's current weights and their version (stamped on every rollout). */
export class WeightStore {
  private current: WeightSet = {};
  private schema: Partial<Record<ComponentName, ReadonlyMap<string, ParameterInfo>>> = {};
  private versionCounter = 0;
  private readonly listeners = new Set<(changed: readonly ComponentName[]) => void>();
  private readonly preparers = new Set<(update: WeightSet) => Promise<void>>();

  get version(): number {
    return this.versionCounter;
  }

  get set(): WeightSet {
    return this.current;
  }

  get(component: ComponentName): WeightMap | undefined {
    return this.current[component];
  }

  /** Installs the initial weights (version stays; not an update) and records their schema. */
  install(set: WeightSet): void {
    this.current = { ...set };
    this.schema = {};
    for (const [name, map] of Object.entries(set) as [ComponentName, WeightMap][]) {
      this.schema[name] = new Map([...map].map(([n, t]) => [n, { dtype: t.dtype, shape: [...t.shape] }]));
    }
  }

  /**
   * Names, dtypes and shapes of a component's parameters as installed. Kept through drop(),
   * so that updates can be checked while the weights themselves are gone.
   */
  parameters(component: ComponentName): ReadonlyMap<string, ParameterInfo> | undefined {
    return this.schema[component];
  }

  /** Components the model has (installed at load, present or dropped now). */
  get components(): ComponentName[] {
    return Object.keys(this.schema) as ComponentName[];
  }

  /**
   * Readies what will serve `update` before replace() swaps it in: with session residency
   * (docs/gpu-design.md) the new sessions are built beside the serving ones. Throws, with nothing
   * changed, when they cannot be; with weights fed as inputs there is nothing to do.
   */
  async prepare(update: WeightSet): Promise<void> {
    for (const p of this.preparers) await p(update);
  }

  /** Swaps in new maps for some components at once and bumps the version. */
  replace(update: WeightSet): number {
    this.current = { ...this.current, ...update };
    this.versionCounter += 1;
    const changed = Object.keys(update) as ComponentName[];
    for (const l of this.listeners) l(changed);
    return this.versionCounter;
  }

  /** Drops every component's weights (deep sleep); listeners hear of it like an update. */
  drop(): number {
    const dropped = Object.keys(this.current) as ComponentName[];
    const freed = Object.values(this.current).reduce((s, m) => s + weightBytes(m), 0);
    this.current = {};
    for (const l of this.listeners) l(dropped);
    return freed;
  }

  /** Called by prepare() (the worker readies its sessions here). */
  onPrepare(preparer: (update: WeightSet) => Promise<void>): () => void {
    this.preparers.add(preparer);
    return () => this.preparers.delete(preparer);
  }

  /** Called after each replace() and drop(): caches that depend on weights invalidate themselves here. */
  onChange(listener: (changed: readonly ComponentName[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
