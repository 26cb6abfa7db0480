// Which components serve the checkpoint's weights, so that a wake after a level-2 sleep never
// brings back the checkpoint in place of a trainer's update without being asked to. (vLLM's
// level-2 sleep discards the weights and the trainer reloads them; here the checkpoint is one
// reload away, which is right only when the dropped weights were the checkpoint's.)
import type { ComponentName, WeightStore } from '../../core/public.ts';

export class CheckpointTracker {
  /** Components whose last weights came from an update, not from the checkpoint. */
  private readonly updated = new Set<ComponentName>();
  private reloading = false;

  constructor(private readonly store: WeightStore) {
    store.onChange((changed) => {
      for (const c of changed) {
        if (!store.get(c)) continue; // dropped: what it held last still decides
        if (this.reloading) this.updated.delete(c);
        else this.updated.add(c);
      }
    });
  }

  /** Of `components`, those whose dropped weights were an update's. */
  updatedOf(components: readonly ComponentName[]): ComponentName[] {
    return components.filter((c) => this.updated.has(c));
  }

  /** Installs weights read from the checkpoint (one version bump): they count as the checkpoint's. */
  async installCheckpoint(update: Parameters<WeightStore['replace']>[0]): Promise<number> {
    await this.store.prepare(update);
    this.reloading = true;
    try {
      return this.store.replace(update);
    } finally {
      this.reloading = false;
    }
  }
}
