import { expect, it } from 'vitest';
import { grpoStep } from './grpo-step.ts';

it('runs a GRPO step on the embedded model: group rollout, rewards, ratio 1, sleep, new weights', async () => {
  const r = await grpoStep({ threads: 2 });
  expect(r.rollout.length).toBe(8);
  expect(r.rollout.batch.all_latents!.shape).toEqual([8, 3, 3, 32, 32]);
  expect(r.rollout.batch.rollout_log_probs!.shape).toEqual([8, 2]);
  expect(r.rollout.nonTensorBatch.sde_window_start).toHaveLength(8);
  expect(r.maxRatioError).toBeLessThan(1e-6);
  // The embedded model draws what it is asked for: most samples score full marks.
  expect(r.reward.filter((x) => x === 1).length).toBeGreaterThanOrEqual(6);
  expect(r.weightsVersion).toBe(1);
  expect(r.nextVersion).toBe(1);
});
