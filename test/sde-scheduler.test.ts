// The sde-scheduler plugin in a worker (dummy model): steps, windows, log-probs, metadata, errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '../core/plugin.ts';
import type { RolloutData } from '../core/protocol.ts';
import type { StepContext, StepResult } from '../core/pipeline/types.ts';
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';
import { eulerStep } from '../core/scheduler/flow-match.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { inlineWorker } from './support/inline-worker.ts';

interface Seen { index: number; sigma: number; sigmaNext: number; latents: Float32Array; velocity: Float32Array; result: StepResult; seeds: number[] }

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('sde-scheduler in a rollout', () => {
  let w: WorkerWrapperBase;
  const seen: Seen[] = [];
  // Records what each step saw and gave, to check the plugin's steps independently.
  const spy = definePlugin({
    name: 'spy',
    apply({ hooks }) {
      hooks.afterStep.tap('spy', (s: StepContext, result) => {
        seen.push({ index: s.index, sigma: s.sigma, sigmaNext: s.sigmaNext, latents: s.latents.slice(), velocity: s.velocity.slice(), result, seeds: s.batch.samples.map((x) => x.seed) });
      });
    },
  });
  beforeAll(async () => { w = await inlineWorker({ maxBatchSize: 8 }, { spy }); });
  afterAll(async () => { await w.close(); });
  const generate = async (reqs: unknown[]) => {
    seen.length = 0;
    return (await w.executeMethod('generate', reqs)) as RolloutData;
  };
  const per = 4 * 8 * 8;

  it("takes Flow-GRPO's sde step with noise from the sample's own step stream", async () => {
    const r = await generate([{ prompt: 'a red circle', seeds: [3, 4], steps: 5, sde: { type: 'sde', noiseLevel: 0.5 } }]);
    expect(r.metaInfo).toMatchObject({ sde_type: 'sde', noise_level: 0.5 });
    expect(seen).toHaveLength(5);
    for (const s of seen) {
      expect(s.result.logProbs).toHaveLength(2);
      for (let b = 0; b < 2; b++) {
        const eps = new Float32Array(per);
        fillGaussian(s.seeds[b], 1 + s.index, eps);
        // docs/rl-math.md in float64
        const dt = s.sigmaNext - s.sigma;
        const stdT = 0.5 * Math.sqrt(s.sigma / (1 - (s.sigma === 1 ? seen[1].sigma : s.sigma)));
        const std = stdT * Math.sqrt(-dt);
        let lp = 0, err = 0;
        for (let k = 0; k < per; k++) {
          const x = s.latents[b * per + k], v = s.velocity[b * per + k];
          const mean = x * (1 + (stdT ** 2 / (2 * s.sigma)) * dt) + v * (1 + (stdT ** 2 * (1 - s.sigma)) / (2 * s.sigma)) * dt;
          err = Math.max(err, Math.abs(s.result.latents[b * per + k] - (mean + std * eps[k])));
          lp += -((std * eps[k]) ** 2) / (2 * std ** 2) - Math.log(std) - 0.5 * Math.log(2 * Math.PI);
        }
        expect(err).toBeLessThan(1e-5);
        expect(Math.abs(s.result.logProbs![b] - lp / per)).toBeLessThan(1e-4);
      }
    }
  });

  it('is a function of the seed: same seed, same trajectory; an ODE rollout differs', async () => {
    const req = { prompt: 'a blue square', seed: 9, steps: 4, sde: { type: 'cps' } };
    const a = await generate([req]);
    const b = await generate([req]);
    const ode = await generate([{ ...req, sde: { type: 'ode' } }]);
    const plain = await generate([{ prompt: 'a blue square', seed: 9, steps: 4 }]);
    expect(bytes(a.batch.latents_clean!.data).equals(bytes(b.batch.latents_clean!.data))).toBe(true);
    expect(bytes(a.batch.latents_clean!.data).equals(bytes(ode.batch.latents_clean!.data))).toBe(false);
    // 'ode' is core's Euler step, bit for bit, and says so in the metadata.
    expect(bytes(ode.batch.latents_clean!.data).equals(bytes(plain.batch.latents_clean!.data))).toBe(true);
    expect(ode.metaInfo).toMatchObject({ sde_type: 'ode', noise_level: 0 });
    expect(a.metaInfo).toMatchObject({ sde_type: 'cps', noise_level: 0.7 });
  });

  it('is stochastic only inside each sample window; Euler (noise level 0) elsewhere', async () => {
    const r = await generate([{ prompt: 'a green star', numOutputsPerPrompt: 4, seed: 24, steps: 8, sde: { type: 'sde', window: { size: 2, range: [1, 7] } } }]);
    const starts = r.nonTensorBatch.sde_window_start as number[];
    expect(starts).toHaveLength(4);
    expect(new Set(starts).size).toBeGreaterThan(1); // drawn per sample
    expect(r.metaInfo).toMatchObject({ sde_window_size: 2, sde_window_range: [1, 7] });
    for (const s of seen) {
      const euler = eulerStep(s.latents, s.velocity, s.sigma, s.sigmaNext);
      for (let b = 0; b < 4; b++) {
        const inside = s.index >= starts[b] && s.index < starts[b] + 2;
        const same = bytes(s.result.latents.subarray(b * per, (b + 1) * per)).equals(bytes(euler.subarray(b * per, (b + 1) * per)));
        expect(same).toBe(!inside);
        if (s.result.logProbs) expect(Number.isNaN(s.result.logProbs[b])).toBe(!inside);
      }
    }
  });

  it('replays explicit window starts: the same rollout again', async () => {
    const req = { prompt: 'a green star', numOutputsPerPrompt: 3, seed: 50, steps: 6, sde: { type: 'sde', window: { size: 2, range: [0, 4] } }, capture: { logProbs: true } };
    const drawn = await generate([req]);
    const starts = drawn.nonTensorBatch.sde_window_start as number[];
    const replay = await generate([{ ...req, sde: { type: 'sde', window: { size: 2 }, windowStarts: starts } }]);
    expect(replay.nonTensorBatch.sde_window_start).toEqual(starts);
    expect(bytes(replay.batch.latents_clean!.data).equals(bytes(drawn.batch.latents_clean!.data))).toBe(true);
    expect(Array.from(replay.batch.rollout_log_probs!.data as Float32Array)).toEqual(Array.from(drawn.batch.rollout_log_probs!.data as Float32Array));
  });

  it('skips the log-prob maths when logProbs is false', async () => {
    await generate([{ prompt: 'x', seed: 1, steps: 3, sde: { type: 'sde', logProbs: false } }]);
    expect(seen.every((s) => s.result.logProbs === undefined)).toBe(true);
  });

  it('refuses bad options before any batch runs, naming the field, and keeps serving', async () => {
    const bad = [
      [{ prompt: 'x', sde: { type: 'langevin' } }, /request 1: invalid sde option: sde\.type/],
      [{ prompt: 'x', steps: 4, sde: { type: 'sde', window: { size: 2, range: [0, 6] } } }, /request 1: sde\.window\.range \[0, 6\] ends after the last step \(4 steps\)/],
      [{ prompt: 'x', sde: { type: 'sde', noiseLevel: 0 } }, /request 1: invalid sde option: sde\.noiseLevel: Too small/],
    ] as const;
    for (const [req, message] of bad) {
      seen.length = 0;
      await expect(w.executeMethod('generate', [{ prompt: 'fine', seed: 1 }, req])).rejects.toThrow(message);
      expect(seen).toHaveLength(0); // the valid request did not run either
    }
    const ok = await generate([{ prompt: 'x', seed: 1, sde: { type: 'sde' } }]);
    expect(ok.metaInfo.sde_type).toBe('sde');
  });
});
