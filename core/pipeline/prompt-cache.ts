// LRU cache of prompt embeddings: GRPO repeats each prompt many times (group size 16-24).
// Entries belong to one text-encoder weight map; a different map misses.
import type { WeightMap } from '../model/weights.ts';

export interface CachedPrompt {
  /** [L, D] */
  embeds: Float32Array;
  /** [P] */
  pooled: Float32Array;
}

export class PromptCache {
  private readonly entries = new Map<string, CachedPrompt>();
  private owner: WeightMap | undefined;
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(prompt: string, weights: WeightMap | undefined): CachedPrompt | undefined {
    const hit = weights === this.owner ? this.entries.get(prompt) : undefined;
    if (hit) {
      this.entries.delete(prompt); // re-insert: most recent last
      this.entries.set(prompt, hit);
      this.hits++;
    } else {
      this.misses++;
    }
    return hit;
  }

  set(prompt: string, weights: WeightMap | undefined, value: CachedPrompt): void {
    if (this.capacity <= 0) return;
    if (weights !== this.owner) {
      this.entries.clear();
      this.owner = weights;
    }
    this.entries.delete(prompt);
    this.entries.set(prompt, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  clear(): void {
    this.entries.clear();
    this.owner = undefined;
  }
}
