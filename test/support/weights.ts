// Helpers of the weight-lifecycle tests: dummy weights by seed, and bitwise rollout comparison.
import { expect } from 'vitest';
import { buildDummyModel } from '../../plugins/dummy-loader/index.ts';
import { dummyArchSchema } from '../../plugins/dummy-loader/architecture.ts';
import type { ComponentName } from '../../core/model/manifest.ts';
import type { WeightMap } from '../../core/model/weights.ts';
import type { RolloutData } from '../../core/protocol.ts';
import { tensorBytes, type HostTensor } from '../../core/tensors/tensor.ts';
import { SMALL_DUMMY } from './inline-worker.ts';

/** The small dummy model's weights for a seed, by component. */
export function dummyWeights(seed: number, arch: Record<string, number> = SMALL_DUMMY): Record<ComponentName, WeightMap> {
  const source = buildDummyModel(dummyArchSchema.parse({ ...arch, seed }));
  return Object.fromEntries(Object.entries(source.components).map(([c, s]) => [c, s!.weights])) as Record<ComponentName, WeightMap>;
}

export const asRecord = (map: WeightMap): Record<string, HostTensor> => Object.fromEntries(map);

export function sameBytes(a: HostTensor, b: HostTensor): boolean {
  return a.dtype === b.dtype && a.shape.join() === b.shape.join() && Buffer.from(tensorBytes(a)).equals(Buffer.from(tensorBytes(b)));
}

/** Every tensor of the two rollouts, bit for bit. */
export function expectSameRollout(a: RolloutData, b: RolloutData): void {
  expect(Object.keys(a.batch).sort()).toEqual(Object.keys(b.batch).sort());
  for (const key of Object.keys(a.batch)) {
    expect(sameBytes(a.batch[key], b.batch[key]), `rollout tensor ${key} differs`).toBe(true);
  }
}

export function expectDifferentRollout(a: RolloutData, b: RolloutData): void {
  expect(sameBytes(a.batch.latents_clean!, b.batch.latents_clean!)).toBe(false);
}

/** A few requests: several prompts, CFG on and off, a group. */
export const REQUESTS = [
  { prompt: 'a red circle', seed: 3, numOutputsPerPrompt: 2 },
  { prompt: 'a blue square on the left', seeds: [11], guidanceScale: 1 },
];
