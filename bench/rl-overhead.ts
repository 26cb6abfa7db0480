// Issue 4's figures: the cost of the RL plugins against a plain ODE rollout of the same batch, in
// one worker, repetitions interleaved (variant order rotated each round): SDE steps, + log-probs,
// + latent capture (all_latents, all_timesteps, rollout_log_probs), and a Flow-GRPO-Fast window;
// SDE rollout images/s at batch 16; and scoring mode (computeLogProbs) on the rollout.
//   node bin/run-ts.js bench/rl-overhead.ts [--device cpu] [--reps 5] [--batch 16] [--threads N]
import { parseArgs } from 'node:util';
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
const config = withDefaultModel(resolveConfig({ device, threads, maxBatchSize: batch, plugins: ['dummy-loader', 'sde-scheduler', 'latent-capture'] }));
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
const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < reps; r++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(k + r) % names.length];
    times[name].push(await timeIt(() => worker.generate(request(name, 1000 * r))));
  }
}
const ode = median(times.ode);
const rollouts = names.map((name) => {
  const t = median(times[name]);
  return { variant: name, medianSeconds: +t.toFixed(3), imagesPerSec: +(batch / t).toFixed(2), overVsOde: +(t / ode - 1).toFixed(4) };
});
for (const r of rollouts) console.log(r);

// Scoring mode: the trainer's recomputation of the batch's log-probs (every step, CFG).
const rl = await worker.generate(request('sdeLogProbsCapture', 7));
const scoreArgs = scoreArgsFromRollout({ batch: rl.batch, nonTensorBatch: rl.nonTensorBatch, metaInfo: rl.metaInfo });
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
