// A user plugin: counts denoising steps and exposes the count as an RPC method.
import type { PluginFactory } from '../../index.ts';

const PLUGIN_NAME = 'step-logger';

const stepLogger: PluginFactory = (options) => {
  const every = Number(options.every ?? 1);
  let steps = 0;
  return {
    name: PLUGIN_NAME,
    apply({ hooks, events, registerMethod }) {
      hooks.afterStep.tap(PLUGIN_NAME, (step) => {
        steps++;
        if ((step.index + 1) % every === 0) events.emit('log', { level: 'info', message: `step ${step.index + 1} of ${step.batch.params.steps}` });
      });
      registerMethod('stepsSeen', () => steps);
    },
  };
};

export default stepLogger;
