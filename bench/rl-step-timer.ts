// A bench-only plugin: seconds spent from each step's beforeStep to the end of its afterStep
// taps, i.e. in the scheduler step (Euler, or the SDE plugin's) and in latent capture. The
// transformer runs before beforeStep, so this is the RL plugins' own cost, whatever the load
// of the machine. RPC takeStepSeconds() returns the sum since the last call and resets it.
import { definePlugin, tapOptions } from '../index.ts';

const NAME = 'rl-step-timer';

export default definePlugin({
  name: NAME,
  apply({ hooks, declare }) {
    let total = 0;
    let started = 0;
    hooks.beforeStep.tap(tapOptions(NAME, 'post'), () => { started = performance.now(); });
    hooks.afterStep.tap(tapOptions(NAME, 'post'), () => { total += performance.now() - started; });
    declare.method('takeStepSeconds', () => {
      const s = total / 1000;
      total = 0;
      return s;
    });
  },
});
