// The weight lifecycle on a GPU with session residency (issue 10 item 1), run by hand on the GPU
// machine (not by CI). Checks, on the embedded model with weightResidency 'session':
// generate; loadWeights + finishWeightUpdate (the new version served, the update's time); LoRA
// added and used per request (the switch's time); sleep 1 and 2 with wake (device memory by
// nvidia-smi, output bitwise as before); computeLogProbs on a rollout (ratio 1).
// Then step time, inputs vs session residency, on the embedded model and on each --dirs folder
// (`omni-worker dummy-model --out DIR ...`), 8 images with CFG (16 transformer rows).
//   node bin/run-ts.js bench/gpu-lifecycle.ts --device cuda --dirs /tmp/d1024
import { parseArgs } from 'node:util';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import type { RolloutData } from '../core/protocol.ts';
import type { WeightMap } from '../core/model/weights.ts';
import type { ComponentName } from '../core/model/manifest.ts';
import { f32, type HostTensor } from '../core/tensors/tensor.ts';
import { prepareDeviceEnvironment } from '../core/model/execution-provider.ts';
import { scoreArgsFromRollout, type ScoreResult } from '../plugins/sde-scheduler/index.ts';
import { benchModels, benchWorker, GB, median, round, type BenchModel, type BenchOptions } from './weights-common.ts';
import { deviceMemoryMiB, writeResults } from './support.ts';
import { queryAdapter } from './lora-adapter.ts';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    dirs: { type: 'string', default: '' }, // dummy-model folders for the step-time comparison
    reps: { type: 'string', default: '3' },
    images: { type: 'string', default: '8' },
    out: { type: 'string', default: '' },
  },
});
const device = args.device as BenchOptions['device'];
const reps = Number(args.reps);
const o: BenchOptions = { device, reps, layers: 1 };
prepareDeviceEnvironment(device, false);

const log = (...xs: unknown[]) => process.stdout.write(xs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ') + '\n');
const now = () => performance.now() / 1000;
const deviceMiB = () => deviceMemoryMiB(device);
function maxAbs(a: HostTensor, b: HostTensor): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}
function check(ok: boolean, what: string, failures: string[]): void {
  log(ok ? 'ok  ' : 'FAIL', what);
  if (!ok) failures.push(what);
}
const gen = (w: WorkerWrapperBase, reqs: unknown[]) => w.executeMethod('generate', reqs) as Promise<RolloutData>;
const requests = (n: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => ({ prompt: `a red circle ${i}`, seed: 100 + i, guidanceScale: 4.5, ...extra }));
const copyMaps = (w: WorkerWrapperBase) => ({ ...w.worker.weights.set }) as Record<ComponentName, WeightMap>;

/** The lifecycle on one worker with session residency; returns figures and failed checks. */
async function lifecycle(model: BenchModel) {
  const failures: string[] = [];
  const figures: Record<string, number | undefined> = {};
  const plugins = ['weight-sync', 'sleep-mode', 'lora', 'sde-scheduler', 'latent-capture', ...(model.config.loadFormat === 'dummy' ? ['dummy-loader'] : [])];
  const w = await benchWorker(o, { ...model, config: { ...model.config, weightResidency: 'session' } }, plugins);
  try {
    const reqs = requests(Number(args.images));
    const r0 = await gen(w, reqs);
    check(w.worker.model.components.transformer.residency === 'session', 'session residency on the device', failures);
    const original = copyMaps(w);
    // A trainer's update: every transformer tensor, scaled slightly, in two buckets.
    const names = [...original.transformer.keys()];
    const scaled = new Map(names.map((n) => { const t = original.transformer.get(n)!; return [n, f32(t.shape, Float32Array.from(t.data as Float32Array, (x) => x * 0.98))]; }));
    const half = names.length >> 1;
    for (const part of [names.slice(0, half), names.slice(half)]) {
      await w.executeMethod('loadWeights', { source: Object.fromEntries(part.map((n) => [n, scaled.get(n)])), bucket: true });
    }
    const bytes = [...scaled.values()].reduce((s, t) => s + t.data.byteLength, 0);
    let t0 = now();
    const fin = (await w.executeMethod('finishWeightUpdate')) as { weightsVersion: number };
    figures.updateSeconds = now() - t0;
    figures.updateGBps = bytes / GB / figures.updateSeconds;
    const r1 = await gen(w, reqs);
    check(fin.weightsVersion === 1 && r1.metaInfo.weights_version === 1 && maxAbs(r1.batch.latents_clean!, r0.batch.latents_clean!) > 0, 'finishWeightUpdate: the new version is served', failures);
    await new Promise((r) => setTimeout(r, 50));
    check(w.worker.model.components.transformer.sessionCount === 1, 'the old version\'s session released', failures);

    // LoRA: added (its merged session built then), used per request, switched.
    t0 = now();
    await w.executeMethod('addLora', { name: 'a', ...queryAdapter(scaled) });
    figures.addLoraSeconds = now() - t0;
    const one = requests(1);
    await gen(w, one);
    t0 = now();
    const withLora = await gen(w, one.map((r) => ({ ...r, lora: 'a' })));
    figures.loraRequestSeconds = now() - t0;
    t0 = now();
    const plain = await gen(w, one);
    figures.plainRequestSeconds = now() - t0;
    check(maxAbs(withLora.batch.latents_clean!, plain.batch.latents_clean!) > 0, 'LoRA per request changes the output', failures);
    const withLora2 = await gen(w, one.map((r) => ({ ...r, lora: 'a' })));
    check(maxAbs(withLora2.batch.latents_clean!, withLora.batch.latents_clean!) === 0, 'LoRA switch back gives the same output, bit for bit', failures);

    // computeLogProbs on the rollout's own trajectory: ratio 1.
    const sde = await gen(w, requests(2, { steps: 6, capture: { latents: true, timesteps: true, logProbs: true }, sde: { type: 'sde' } }));
    const s = (await w.executeMethod('computeLogProbs', scoreArgsFromRollout(sde))) as ScoreResult;
    let ratio = 0;
    for (let i = 0; i < s.logProbs.data.length; i++) ratio = Math.max(ratio, Math.abs(Math.exp(Number(s.logProbs.data[i]) - Number(sde.batch.rollout_log_probs!.data[i])) - 1));
    figures.logProbRatioMaxError = ratio;
    check(ratio <= 1e-6, `computeLogProbs ratio 1 (max |ratio - 1| ${ratio})`, failures);

    // Sleep level 1: the sessions (the device copy of the weights) go; wake rebuilds them.
    const before = await gen(w, reqs);
    figures.deviceMiBAwake = deviceMiB();
    await w.executeMethod('sleep', { level: 1 });
    figures.deviceMiBLevel1 = deviceMiB();
    t0 = now();
    await w.executeMethod('wakeUp');
    figures.wakeLevel1Seconds = now() - t0;
    check(maxAbs((await gen(w, reqs)).batch.latents_clean!, before.batch.latents_clean!) === 0, 'sleep 1 + wake: same output, bit for bit', failures);
    // Level 2: host maps dropped too; the trainer sends them again.
    const held = copyMaps(w);
    await w.executeMethod('sleep', { level: 2 });
    figures.deviceMiBLevel2 = deviceMiB();
    t0 = now();
    await w.executeMethod('wakeUp', ['sessions']);
    for (const [c, map] of Object.entries(held)) await w.executeMethod('loadWeights', { component: c, source: Object.fromEntries(map), bucket: true });
    await w.executeMethod('finishWeightUpdate');
    figures.wakeLevel2Seconds = now() - t0;
    check(maxAbs((await gen(w, reqs)).batch.latents_clean!, before.batch.latents_clean!) === 0, 'sleep 2 + wake + loadWeights: same output, bit for bit', failures);
  } finally {
    await w.close();
  }
  return { figures, failures };
}

/** Median seconds per denoising step: (T(steps hi) - T(steps lo)) / (hi - lo), per residency. */
async function stepTimes(model: BenchModel) {
  const out: Record<string, number> = {};
  const latents: Record<string, HostTensor> = {};
  for (const residency of ['inputs', 'session'] as const) {
    const plugins = model.config.loadFormat === 'dummy' ? ['dummy-loader'] : [];
    const w = await benchWorker(o, { ...model, config: { ...model.config, weightResidency: residency } }, plugins);
    try {
      const reqs = (steps: number) => requests(Number(args.images), { steps });
      await gen(w, reqs(2)); // warm-up: session build, arena, prompt cache
      const per: number[] = [];
      for (let i = 0; i < reps; i++) {
        let t0 = now();
        await gen(w, reqs(2));
        const lo = now() - t0;
        t0 = now();
        const r = await gen(w, reqs(10));
        per.push((now() - t0 - lo) / 8);
        latents[residency] = r.batch.latents_clean!;
      }
      out[residency] = median(per);
    } finally {
      await w.close();
    }
  }
  return { inputsStep: round(out.inputs), sessionStep: round(out.session), speedup: round(out.inputs / out.session), maxAbsDiff: maxAbs(latents.inputs, latents.session) };
}

const { embedded } = benchModels(o);
const results: Record<string, unknown> = { device, images: Number(args.images), cfg: true };
log(`lifecycle, ${embedded.name}, session residency on ${device}`);
const life = await lifecycle(embedded);
log(life.figures);
results.lifecycle = life;
const models: BenchModel[] = [embedded, ...args.dirs!.split(',').filter(Boolean).map((d) => ({ name: d, config: { loadFormat: 'onnx', model: d } }))];
const steps: Record<string, unknown> = {};
for (const m of models) {
  steps[m.name] = await stepTimes(m);
  log('step time', m.name, steps[m.name]);
}
results.stepTimes = steps;
if (args.dirs) {
  const dir = args.dirs.split(',')[0];
  log(`lifecycle, ${dir}, session residency on ${device}`);
  const big = await lifecycle({ name: dir, config: { loadFormat: 'onnx', model: dir } });
  log(big.figures);
  results.lifecycleDummy = big;
}
const path = writeResults(args.out || `gpu-lifecycle-${device}`, results);
log('results in', path);
const failed = [...life.failures, ...((results.lifecycleDummy as typeof life | undefined)?.failures ?? [])];
if (failed.length) {
  log(`${failed.length} check(s) failed`);
  process.exitCode = 1;
}
