// Issue 4's figures: the cost of the RL plugins against a plain ODE rollout of the same batch, in
// one worker, repetitions interleaved (variant order rotated each round): SDE steps, + log-probs,
// + latent capture (all_latents, all_timesteps, rollout_log_probs), and a Flow-GRPO-Fast window;
// SDE rollout images/s at batch 16; and scoring mode (computeLogProbs) on the rollout.
// Three measures of the cost, each against the same round's ODE rollout: wall clock (noisy on a
// shared machine), the process's CPU time (ONNX Runtime's threads included; far less sensitive to
// other processes), and the time spent inside the steps themselves (bench/rl-step-timer.ts:
// scheduler step + capture) over the ODE rollout's wall time.
//   node bin/run-ts.js bench/rl-overhead.ts [--device cpu] [--reps 5] [--batch 16] [--threads N]
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createWorker, withDefaultModel } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import type { DeviceName } from '../core/model/execution-provider.ts';
import { scoreArgsFromRollout } from '../plugins/sde-scheduler/index.ts';
import { median, timeIt, writeResults } from './support.ts';

const { values: args } = parseArgs({
  options: { device: { type: 'string', default: 'cpu' }, reps: { type: 'string', default: '5' }, batch: { type: 'string', default: '16' }, threads: { type: 'string' } },
});
const device = args.device as DeviceName;
const reps = Number(args.reps);
const batch = Number(args.batch);
const threads = args.threads ? Number(args.threads) : undefined;
const timer = { module: fileURLToPath(new URL('./rl-step-timer.ts', import.meta.url)) };
const config = withDefaultModel(resolveConfig({ device, threads, maxBatchSize: batch, plugins: ['dummy-loader', 'sde-scheduler', 'latent-capture', timer] }));
const worker = await createWorker(config);
const state = (await worker.executeMethod('getState')) as { model: string };
const model = config.loadFormat === 'dummy' ? 'dummy' : state.model.split('/').at(-1)!;

const CAPTURE = { latents: true, timesteps: true, logProbs: true };
const variants: Record<string, Record<string, unknown>> = {
  ode: {},
  sde: { sde: { type: 'sde', logProbs: false } },
  sdeLogProbs: { sde: { type: 'sde' } },
  sdeLogProbsCapture: { sde: { type: 'sde' }, capture: CAPTURE },
  sdeWindowCapture: { sde: { type: 'sde', window: { size: 2, range: [0, 5] } }, capture: CAPTURE },
};
const names = Object.keys(variants);
const request = (name: string, seed: number) => [{ prompt: 'a red circle at the top left on a white background', numOutputsPerPrompt: batch, seed, ...variants[name] }];

for (const name of names) await worker.generate(request(name, 0)); // warm-up: sessions, prompt cache
const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
const inSteps: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < reps; r++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(k + r) % names.length];
    await worker.executeMethod('takeStepSeconds');
    const c0 = process.cpuUsage();
    wall[name].push(await timeIt(() => worker.generate(request(name, 1000 * r))));
    const c = process.cpuUsage(c0);
    cpu[name].push((c.user + c.system) / 1e6);
    inSteps[name].push((await worker.executeMethod('takeStepSeconds')) as number);
  }
}
const ode = median(wall.ode);
const odeSteps = median(inSteps.ode);
const rollouts = names.map((name) => {
  const t = median(wall[name]);
  return {
    variant: name,
    medianSeconds: +t.toFixed(3),
    imagesPerSec: +(batch / t).toFixed(2),
    /** median over rounds of (this variant's time / the same round's ODE time) - 1 */
    wallOverVsOde: +(median(wall[name].map((x, r) => x / wall.ode[r])) - 1).toFixed(4),
    cpuSeconds: +median(cpu[name]).toFixed(3),
    /** median over rounds of (this variant's CPU time / the same round's ODE CPU time) - 1 */
    cpuOverVsOde: +(median(cpu[name].map((x, r) => x / cpu.ode[r])) - 1).toFixed(4),
    stepSeconds: +median(inSteps[name]).toFixed(4),
    /** (time inside the steps - the ODE rollout's) / the ODE rollout's wall time */
    stepOverVsOde: +((median(inSteps[name]) - odeSteps) / ode).toFixed(4),
    wallSecondsByRound: wall[name].map((x) => +x.toFixed(3)),
  };
});
for (const { wallSecondsByRound: _, ...r } of rollouts) console.log(r);

// Scoring mode: the trainer's recomputation of the batch's log-probs (every step, CFG).
const rl = await worker.generate(request('sdeLogProbsCapture', 7));
const scoreArgs = scoreArgsFromRollout(rl);
await worker.executeMethod('computeLogProbs', scoreArgs);
const ts: number[] = [];
for (let r = 0; r < reps; r++) ts.push(await timeIt(() => worker.executeMethod('computeLogProbs', scoreArgs)));
const scoring = { medianSeconds: +median(ts).toFixed(3), samplesPerSec: +(batch / median(ts)).toFixed(2) };
console.log('computeLogProbs', scoring);
await worker.close();

const path = writeResults(`rl-overhead-${device}`, {
  model, device, threads: threads ?? 'ort default', batch, steps: rl.metaInfo.steps, guidanceScale: rl.metaInfo.guidance_scale, reps,
  rollouts, scoring,
});
console.log(`wrote ${path}`);
