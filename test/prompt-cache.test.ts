// The prompt cache against a model (fast-check): an LRU list of at most `capacity` prompts that
// belongs to one text-encoder weight map; a lookup under another map misses, an insert under
// another map starts afresh.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PromptCache, type CachedPrompt } from '../core/pipeline/prompt-cache.ts';
import type { WeightMap } from '../core/model/weights.ts';

const MAPS: WeightMap[] = [new Map(), new Map()];

type Op =
  | { kind: 'get'; prompt: string; map: number }
  | { kind: 'set'; prompt: string; map: number }
  | { kind: 'clear' };

const prompt = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('get' as const), prompt, map: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), prompt, map: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);

/** The model: prompts least recently used first, and the map they belong to. */
class Model {
  order: string[] = [];
  values = new Map<string, CachedPrompt>();
  owner: number | undefined;
  hits = 0;
  misses = 0;
  constructor(readonly capacity: number) {}
  touch(p: string) { this.order = [...this.order.filter((q) => q !== p), p]; }
  get(p: string, map: number): CachedPrompt | undefined {
    const hit = map === this.owner && this.order.includes(p) ? this.values.get(p) : undefined;
    if (hit) { this.touch(p); this.hits++; } else this.misses++;
    return hit;
  }
  set(p: string, map: number, v: CachedPrompt) {
    if (this.capacity === 0) return;
    if (map !== this.owner) { this.order = []; this.owner = map; }
    this.touch(p);
    this.values.set(p, v);
    while (this.order.length > this.capacity) this.order.shift();
  }
  clear() { this.order = []; this.owner = undefined; }
}

describe('prompt cache', () => {
  it('behaves as an LRU of one weight map, evicting the least recently used prompt', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 4 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
      const cache = new PromptCache(capacity);
      const model = new Model(capacity);
      ops.forEach((o, n) => {
        if (o.kind === 'clear') { cache.clear(); model.clear(); return; }
        if (o.kind === 'get') {
          expect(cache.get(o.prompt, MAPS[o.map])).toBe(model.get(o.prompt, o.map));
        } else {
          const value = { embeds: new Float32Array([n]), pooled: new Float32Array([n]) };
          cache.set(o.prompt, MAPS[o.map], value);
          model.set(o.prompt, o.map, value);
        }
        expect(cache.size).toBe(model.order.length);
        expect(cache.size).toBeLessThanOrEqual(capacity);
      });
      expect([cache.hits, cache.misses]).toEqual([model.hits, model.misses]);
    }));
  });

  it('evicts exactly the least recently used entry when full', () => {
    const cache = new PromptCache(2);
    const v = (x: number) => ({ embeds: new Float32Array([x]), pooled: new Float32Array([x]) });
    cache.set('a', MAPS[0], v(1));
    cache.set('b', MAPS[0], v(2));
    expect(cache.get('a', MAPS[0])?.embeds[0]).toBe(1); // a is now the most recent
    cache.set('c', MAPS[0], v(3));
    expect(cache.get('b', MAPS[0])).toBeUndefined();
    expect(cache.get('a', MAPS[0])?.embeds[0]).toBe(1);
    expect(cache.get('c', MAPS[0])?.embeds[0]).toBe(3);
    expect(cache.get('c', MAPS[1])).toBeUndefined(); // another encoder's weights: a miss
  });
});
