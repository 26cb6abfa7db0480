// The committed Flow-GRPO result (examples/flow-grpo/results/2026-11-29-h200-run4): its weights load
// into a CPU worker with `loadWeights` and reproduce what the H200 run reported at its final
// evaluation, judged by the reward classifier in ONNX Runtime.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkWeights } from '../examples/flow-grpo/check-weights.ts';
import { REPO } from './support/serve-process.ts';

const RESULT = join(REPO, 'examples/flow-grpo/results/2026-11-29-h200-run4');

describe('the committed Flow-GRPO weights', () => {
  it('load with loadWeights and draw the three-object scenes the start model never draws, without forgetting single objects', async () => {
    const metrics = JSON.parse(readFileSync(join(RESULT, 'metrics.json'), 'utf8')) as { evals: { label: string; heldout_accuracy: number; single_accuracy: number }[] };
    const final = metrics.evals.find((e) => e.label === 'final')!;
    const r = await checkWeights(RESULT);
    expect(r.start.heldout).toMatchObject({ accuracy: 0, samples: 256 });
    expect(r.start.single.accuracy).toBe(1);
    // CPU and GPU kernels differ in rounding: a few samples may flip.
    expect(Math.abs(r.trained.heldout.accuracy - final.heldout_accuracy)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(r.trained.single.accuracy - final.single_accuracy)).toBeLessThanOrEqual(0.03);
    expect(r.trained.heldout.accuracy).toBeGreaterThanOrEqual(0.2);
    expect(r.trained.single.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.trained.weightsVersion).toBeGreaterThan(0);
  }, 240_000);

  it('refuses a folder that is no result before building a worker', async () => {
    await expect(checkWeights(join(RESULT, 'seed-1'))).rejects.toThrow(/transformer-flow-grpo\.safetensors not found/);
  });
});
