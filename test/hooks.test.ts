import { describe, expect, it } from 'vitest';
import { createWorkerHooks, tapOptions } from '../core/hooks.ts';
import { eulerStep } from '../core/scheduler/flow-match.ts';
import { definePlugin } from '../core/plugin.ts';
import type { RolloutData } from '../core/protocol.ts';
import { inlineWorker } from './support/inline-worker.ts';

describe('hooks', () => {
  it('orders taps by declared order, not by registration order', () => {
    const hooks = createWorkerHooks();
    const seen: string[] = [];
    hooks.beforeStep.tap(tapOptions('late', 'post'), () => seen.push('post'));
    hooks.beforeStep.tap(tapOptions('mid'), () => seen.push('normal'));
    hooks.beforeStep.tap(tapOptions('early', 'pre'), () => seen.push('pre'));
    hooks.beforeStep.call({} as never);
    expect(seen).toEqual(['pre', 'normal', 'post']);
  });

  it('fires the flow hooks in order, once per step', async () => {
    const events: string[] = [];
    const recorder = definePlugin({
      name: 'recorder',
      apply({ hooks }) {
        hooks.beforeExecute.tap('recorder', () => { events.push('beforeExecute'); });
        hooks.prepareLatents.tap('recorder', (l) => { events.push('prepareLatents'); return l; });
        hooks.beforeStep.tap('recorder', (s) => { events.push(`beforeStep${s.index}`); });
        hooks.afterStep.tap('recorder', (s) => { events.push(`afterStep${s.index}`); });
        hooks.decode.tapPromise({ name: 'recorder', stage: -1 }, async () => { events.push('decode'); return undefined; });
        hooks.afterExecute.tap('recorder', (r) => { events.push('afterExecute'); return r; });
      },
    });
    const w = await inlineWorker({}, { recorder });
    await w.executeMethod('generate', [{ prompt: 'a red circle', seed: 1, steps: 2 }]);
    expect(events).toEqual(['beforeExecute', 'prepareLatents', 'beforeStep0', 'afterStep0', 'beforeStep1', 'afterStep1', 'decode', 'afterExecute']);
    await w.close();
  });

  it('lets a plugin replace the scheduler step, and removing the plugin restores Euler', async () => {
    // A "half Euler" scheduler: a different, checkable rule.
    const half = definePlugin({
      name: 'half-step',
      apply({ hooks }) {
        hooks.schedulerStep.tap('half-step', (s) => ({ latents: eulerStep(s.latents, s.velocity, s.sigma, (s.sigma + s.sigmaNext) / 2) }));
      },
    });
    const request = [{ prompt: 'a red circle', seed: 3, steps: 3 }];
    const replaced = await inlineWorker({}, { half });
    const plain = await inlineWorker({ plugins: ['dummy-loader'] });
    const a = (await replaced.executeMethod('generate', request)) as RolloutData;
    const b = (await plain.executeMethod('generate', request)) as RolloutData;
    expect(a.batch.responses!.shape).toEqual(b.batch.responses!.shape);
    expect(Buffer.compare(Buffer.from(a.batch.latents_clean!.data.buffer), Buffer.from(b.batch.latents_clean!.data.buffer))).not.toBe(0);
    // The replaced worker's trajectory is the half-step rule applied by hand to the same noise.
    let steps = 0;
    const check = definePlugin({
      name: 'check',
      apply({ hooks }) {
        hooks.afterStep.tap('check', (s, r) => {
          const expected = eulerStep(s.latents, s.velocity, s.sigma, (s.sigma + s.sigmaNext) / 2);
          expect(Array.from(r.latents)).toEqual(Array.from(expected));
          steps++;
        });
      },
    });
    const checked = await inlineWorker({}, { half, check });
    await checked.executeMethod('generate', request);
    expect(steps).toBe(3);
    await Promise.all([replaced.close(), plain.close(), checked.close()]);
  });
});
