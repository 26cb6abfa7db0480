// The `sde` option: validation messages and the per-sample window draw.
import { describe, expect, it } from 'vitest';
import { streamRandom } from '../core/pipeline/seeded-noise.ts';
import type { SampleSpec } from '../core/pipeline/types.ts';
import { drawWindowStart, inWindow, planBatch, WINDOW_STREAM } from '../plugins/sde-scheduler/plan.ts';
import { parseSdeOptions } from '../plugins/sde-scheduler/options.ts';

const parse = (sde: unknown, extra: Record<string, unknown> = {}, steps = 10) => parseSdeOptions(sde, { prompt: 'x', sde: sde as never, ...extra }, 3, steps);
const samples = (seeds: number[]): SampleSpec[] => seeds.map((seed, k) => ({ requestIndex: 0, outputIndex: k, prompt: 'x', negativePrompt: '', seed, request: { prompt: 'x' } }));

describe('sde option', () => {
  it('names the field and the request in every error', () => {
    expect(() => parse({ type: 'sdee' })).toThrow(/^request 3: invalid sde option: sde\.type: /);
    expect(() => parse({ type: 'sde', noiseLevel: -1 })).toThrow(/request 3: invalid sde option: sde\.noiseLevel: /);
    expect(() => parse({ type: 'sde', window: { size: 2, range: [0, 'x'] } })).toThrow(/sde\.window\.range\[1\]: /);
    expect(() => parse({ type: 'sde', extra: 1 })).toThrow(/sde: Unrecognized key.*extra/);
    expect(() => parse('sde')).toThrow(/invalid sde option: sde: /);
    expect(() => parse({ type: 'sde', window: { size: 11, range: [0, 10] } })).toThrow('request 3: sde.window.size is 11 but the rollout has 10 steps');
    expect(() => parse({ type: 'sde', window: { size: 2, range: [0, 12] } })).toThrow('sde.window.range [0, 12] ends after the last step (10 steps)');
    expect(() => parse({ type: 'sde', window: { size: 3, range: [2, 4] } })).toThrow('sde.window.range [2, 4] cannot hold a window of 3 steps');
    expect(() => parse({ type: 'sde', window: { size: 2 } })).toThrow('sde.window.range is required unless sde.windowStarts gives each start');
    expect(() => parse({ type: 'sde', windowStarts: [1] })).toThrow('sde.windowStarts needs sde.window.size');
    expect(() => parse({ type: 'sde', window: { size: 2 }, windowStarts: [1, 2] }, { numOutputsPerPrompt: 3 })).toThrow("sde.windowStarts has 2 starts for the request's 3 samples");
    expect(() => parse({ type: 'sde', window: { size: 2 }, windowStarts: [9] })).toThrow('sde.windowStarts[0] = 9: a window of 2 from there ends after the last step');
    expect(() => parse({ type: 'sde', window: { size: 2, range: [0, 5] }, windowStarts: [4] })).toThrow('sde.windowStarts[0] = 4 is outside [0, 3]');
    expect(() => parse({ type: 'ode', noiseLevel: 0.5 })).toThrow("sde.noiseLevel has no effect with type 'ode'");
    expect(() => parse({ type: 'ode', window: { size: 2, range: [0, 5] } })).toThrow("sde.window needs type 'sde' or 'cps'");
    expect(() => parse({ type: 'ode', logProbs: true })).toThrow("sde.logProbs needs type 'sde' or 'cps'");
  });

  it('plans defaults: noise level 0.7, log-probs on, every step stochastic', () => {
    const p = planBatch(samples([1, 2]), parse({ type: 'cps' }), 10);
    expect(p).toMatchObject({ type: 'cps', noiseLevel: 0.7, logProbs: true, windowSize: 10, starts: null });
    expect(inWindow(p, 1, 9)).toBe(true);
    expect(planBatch(samples([1]), parse({ type: 'ode' }), 10)).toMatchObject({ type: 'ode', noiseLevel: 0, logProbs: false });
  });

  it('draws each start in [lo, hi - size] from the sample seed, reaching every value', () => {
    const seen = new Set<number>();
    for (let seed = 0; seed < 400; seed++) {
      const s = drawWindowStart(seed, 2, [1, 6]);
      expect(s).toBeGreaterThanOrEqual(1);
      expect(s).toBeLessThanOrEqual(4);
      seen.add(s);
    }
    expect([...seen].sort()).toEqual([1, 2, 3, 4]);
    // The draw uses its own stream: not the first uniform of any noise stream 0..N.
    expect(drawWindowStart(77, 1, [0, 1000])).toBe(Math.floor(streamRandom(77, WINDOW_STREAM)() * 1000));
  });

  it('gives a sample the same window whatever its batch-mates, and replays explicit starts', () => {
    const opts = parse({ type: 'sde', window: { size: 2, range: [0, 6] } });
    const alone = planBatch(samples([42]), opts, 10).starts!;
    const mixed = planBatch(samples([7, 8, 42, 9]), opts, 10).starts!;
    expect(mixed[2]).toBe(alone[0]);
    const replay = planBatch(samples([1, 2, 3]), parse({ type: 'sde', window: { size: 2 }, windowStarts: [0, 5, 8] }, { numOutputsPerPrompt: 3 }), 10);
    expect(Array.from(replay.starts!)).toEqual([0, 5, 8]);
    expect([inWindow(replay, 1, 4), inWindow(replay, 1, 5), inWindow(replay, 1, 6), inWindow(replay, 1, 7)]).toEqual([false, true, true, false]);
  });
});
