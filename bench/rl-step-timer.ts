// A bench-only plugin: seconds spent from each step's beforeStep to the end of its afterStep
// taps, i.e. in the scheduler step (Euler, or the SDE plugin's) and in latent capture. The
// transformer runs before beforeStep, so this is the RL plugins' own cost, whatever the load
// of the machine. RPC takeStepSeconds() returns the sum since the last call and resets it.
import { tapOptions, type PluginFactory } from '../index.ts';

const NAME = 'rl-step-timer';

const stepTimer: PluginFactory = () => {
  let total = 0;
  let started = 0;
  return {
    name: NAME,
    apply({ hooks, registerMethod }) {
      hooks.beforeStep.tap(tapOptions(NAME, 'post'), () => { started = performance.now(); });
      hooks.afterStep.tap(tapOptions(NAME, 'post'), () => { total += performance.now() - started; });
      registerMethod('takeStepSeconds', () => {
        const s = total / 1000;
        total = 0;
        return s;
      });
    },
  };
};

export default stepTimer;
