// WeightStaging.commit awaits the new maps being readied (session builds): buckets staged meanwhile
// wait for the next commit, and a failed commit puts its buckets back under the later ones.
import { describe, expect, it } from 'vitest';
import { WeightStore, type WeightMap } from '../core/model/weights.ts';
import { f32, type HostTensor } from '../core/tensors/tensor.ts';
import { WeightStaging } from '../plugins/weight-sync/staging.ts';

const t = (v: number): HostTensor => f32([1], Float32Array.of(v));
const valueOf = (m: WeightMap | undefined, n: string) => (m?.get(n)?.data as Float32Array)[0];

function store(): WeightStore {
  const s = new WeightStore();
  s.install({ transformer: new Map([['a', t(0)], ['b', t(0)]]) });
  return s;
}

describe('WeightStaging.commit while the new maps are readied', () => {
  it('leaves a bucket staged during the commit for the next one', async () => {
    const s = store();
    const staging = new WeightStaging();
    staging.stage('transformer', new Map([['a', t(1)]]));
    const version = await staging.commit(s, async (maps) => {
      staging.stage('transformer', new Map([['b', t(2)]])); // arrives while the session builds
      return s.replace(maps);
    });
    expect(version).toBe(1);
    expect([valueOf(s.get('transformer'), 'a'), valueOf(s.get('transformer'), 'b')]).toEqual([1, 0]);
    expect(staging.summary()).toEqual({ transformer: 1 });
    await staging.commit(s, async (maps) => s.replace(maps));
    expect(valueOf(s.get('transformer'), 'b')).toBe(2);
  });

  it('puts the buckets of a failed commit back, a later bucket winning by name', async () => {
    const s = store();
    const staging = new WeightStaging();
    staging.stage('transformer', new Map([['a', t(1)], ['b', t(1)]]));
    await expect(staging.commit(s, async () => {
      staging.stage('transformer', new Map([['b', t(3)]]));
      throw new Error('out of device memory');
    })).rejects.toThrow('out of device memory');
    expect(s.version).toBe(0);
    expect(valueOf(s.get('transformer'), 'a')).toBe(0);
    await staging.commit(s, async (maps) => s.replace(maps));
    expect([valueOf(s.get('transformer'), 'a'), valueOf(s.get('transformer'), 'b')]).toEqual([1, 3]);
  });
});
