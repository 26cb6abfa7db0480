// A user plugin: counts denoising steps, logs every `every`-th one, and exposes the count as
// an RPC method. Core validates its options against optionsSchema before any plugin applies.
import { z } from 'zod';
import { definePlugin } from '../../index.ts';

const PLUGIN_NAME = 'step-logger';

// Types the method for executeMethod('stepsSeen') (from a package: declare module 'omni-worker').
declare module '../../index.ts' {
  interface OmniWorkerMethods {
    /** Denoising steps this worker has run. */
    stepsSeen(): number;
  }
}

export default definePlugin({
  name: PLUGIN_NAME,
  optionsSchema: z.object({ every: z.number().int().positive().default(1) }).strict(),
  apply({ hooks, events, declare }, { every }) {
    let steps = 0;
    hooks.afterStep.tap(PLUGIN_NAME, (step) => {
      steps++;
      if ((step.index + 1) % every === 0) events.emit('log', { level: 'info', message: `step ${step.index + 1} of ${step.batch.params.steps}` });
    });
    declare.method('stepsSeen', () => steps);
  },
});
