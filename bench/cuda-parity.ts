// GPU against CPU on the same requests: how far GPU rollouts drift from CPU ones. Default: SDE
// with log-probs, CUDA in strict float32 (NVIDIA_TF32_OVERRIDE=0, the worker's default).
// Run on the GPU machine:
//   node bin/run-ts.js bench/cuda-parity.ts [--tf32] [--ode] [--devices cpu,cuda,webgpu]
import { parseArgs } from 'node:util';
import { createWorker } from '../index.ts';

const { values: args } = parseArgs({ options: { tf32: { type: 'boolean', default: false }, ode: { type: 'boolean', default: false }, devices: { type: 'string', default: 'cpu,cuda' } } });
const devices = args.devices.split(',') as ('cpu' | 'cuda' | 'webgpu')[];
const req = [{ prompt: 'a red circle at the top left', numOutputsPerPrompt: 4, seed: 3, ...(args.ode ? {} : { sde: { type: 'sde' as const }, capture: { logProbs: true } }) }];
const out: Record<string, { latents: Float32Array; logProbs?: Float32Array }> = {};
for (const device of devices) {
  const w = await createWorker({ device, cudaTf32: args.tf32 });
  const r = await w.generate(req);
  out[device] = { latents: r.batch.latents_clean!.data as Float32Array, logProbs: r.batch.rollout_log_probs?.data as Float32Array | undefined };
  await w.close();
}
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
for (const d of devices.filter((d) => d !== 'cpu')) {
  const lp = out[d].logProbs ? `, log-probs max|diff| ${maxDiff(out[d].logProbs!, out.cpu.logProbs!).toExponential(2)}` : '';
  console.log(`${d} vs cpu (${args.ode ? 'ode' : 'sde'}, tf32 ${args.tf32 ? 'allowed' : 'off'}): latents max|diff| ${maxDiff(out[d].latents, out.cpu.latents).toExponential(2)}${lp}`);
}
