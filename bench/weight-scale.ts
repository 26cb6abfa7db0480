// A full weight update and sleep/wake on a model of real size (issue 10 items 4 and 6), with
// session residency: the dummy architecture in memory (the same graphs and seeded weights as
// `omni-worker dummy-model`), e.g. hidden 2048 x 24 layers (611 M parameters).
// Update: the trainer's bytes for every transformer tensor, in buckets (loadWeights: checked,
// copied or converted to the model's dtype), then finishWeightUpdate (the new version's session
// built beside the serving one, swapped in): GB/s of the model's bytes from the first loadWeights
// to a servable version, split into loadWeights (bytes in; with float32 bytes into a half model,
// the conversion too), session build and the rest of the commit. Bytes in the model's dtype and,
// for a half model, float32 bytes (the trainer's master weights).
// Sleep (--sleep): device memory by nvidia-smi before the worker, awake, after level 1 and 2;
// wake times (level 1: sessions rebuilt from the host weights; level 2: the trainer sends every
// weight again); output bit for bit as before.
//   node bin/run-ts.js bench/weight-scale.ts --device cuda --hidden 2048 --layers 24 --dtype float16 [--sleep] [--reps 2] [--out FILE]
import { parseArgs } from 'node:util';
import { prepareDeviceEnvironment } from '../core/model/execution-provider.ts';
import { PRECISION_DTYPE, type Precision } from '../core/model/precision.ts';
import type { WeightMap } from '../core/model/weights.ts';
import type { ComponentName } from '../core/model/manifest.ts';
import type { RolloutData } from '../core/protocol.ts';
import { fromFloat32, toFloat32, type FloatDType } from '../core/tensors/dtype-convert.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { benchWorker, GB, median, round, type BenchOptions } from './weights-common.ts';
import { deviceMemoryMiB, writeResults } from './support.ts';
import { watchSessionBuilds, withBuilds } from './session-builds.ts';
import { sleepMemory } from './derived-figures.ts';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    hidden: { type: 'string', default: '2048' },
    layers: { type: 'string', default: '24' },
    heads: { type: 'string', default: '16' },
    image: { type: 'string', default: '64' },
    dtype: { type: 'string', default: 'float16' },
    reps: { type: 'string', default: '2' },
    buckets: { type: 'string', default: '4' },
    images: { type: 'string', default: '2' },
    sleep: { type: 'boolean', default: false },
    out: { type: 'string', default: '' },
  },
});
const device = args.device as BenchOptions['device'];
const reps = Number(args.reps);
const dtype = PRECISION_DTYPE[args.dtype as Precision] as FloatDType;
if (!dtype) throw new Error(`--dtype must be float32, float16 or bfloat16, got ${args.dtype}`);
prepareDeviceEnvironment(device, false);
const builds = watchSessionBuilds();
const log = (...xs: unknown[]) => process.stdout.write(xs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ') + '\n');
const now = () => performance.now() / 1000;
const bytesOf = (m: ReadonlyMap<string, HostTensor>) => [...m.values()].reduce((s, t) => s + t.data.byteLength, 0);
const gen = (w: WorkerWrapperBase) => w.executeMethod('generate', Array.from({ length: Number(args.images) }, (_, i) => ({ prompt: `a red circle ${i}`, seed: 3 + i, steps: 2 }))) as Promise<RolloutData>;
const same = (a: RolloutData, b: RolloutData) => a.batch.latents_clean!.data.every((x, i) => x === b.batch.latents_clean!.data[i]);

/** The trainer's tensors: every transformer weight scaled by `factor`, in `as` (float32 or the model's dtype). */
function trainerTensors(base: WeightMap, factor: number, as: FloatDType): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of base) {
    const x = toFloat32(t);
    for (let i = 0; i < x.length; i++) x[i] *= factor;
    out.set(name, { dtype: as, shape: t.shape, data: as === 'F32' ? x : fromFloat32(x, as) });
  }
  return out;
}

/** One full update in `buckets` loadWeights calls, then finishWeightUpdate; its split in seconds. */
async function update(w: WorkerWrapperBase, tensors: Map<string, HostTensor>) {
  const names = [...tensors.keys()];
  const per = Math.ceil(names.length / Number(args.buckets));
  const t0 = now();
  for (let i = 0; i < names.length; i += per) {
    await w.executeMethod('loadWeights', { source: Object.fromEntries(names.slice(i, i + per).map((n) => [n, tensors.get(n)])), bucket: true });
  }
  const load = now() - t0;
  const fin = await withBuilds(builds, () => w.executeMethod('finishWeightUpdate') as Promise<{ weightsVersion: number }>);
  return { load, finish: fin.seconds, build: fin.buildSeconds, builds: fin.builds, version: fin.value.weightsVersion };
}

const failures: string[] = [];
const check = (ok: boolean, what: string) => { log(ok ? 'ok  ' : 'FAIL', what); if (!ok) failures.push(what); };
const arch = { hidden: Number(args.hidden), layers: Number(args.layers), heads: Number(args.heads), height: Number(args.image), width: Number(args.image), dtype: args.dtype };
const results: Record<string, unknown> = { device, model: `dummy ${arch.hidden}x${arch.layers} ${arch.dtype}, ${arch.height}x${arch.width}`, residency: 'session' };
const beforeMiB = deviceMemoryMiB(device);
let t0 = now();
const w = await benchWorker({ device, reps, layers: 1 }, { name: 'dummy', config: { loadFormat: 'dummy', loadOptions: arch, weightResidency: 'session' } }, ['dummy-loader', 'weight-sync', 'sleep-mode']);
try {
  results.loadSeconds = round(now() - t0);
  const original = w.worker.weights.get('transformer')!;
  const modelBytes = bytesOf(original);
  results.transformer = { parameters: [...original.values()].reduce((s, t) => s + t.data.length, 0), bytes: modelBytes, dtype };
  log(results.model, results.transformer, `loaded in ${results.loadSeconds} s`);
  const r0 = await gen(w);

  const updates: Record<string, unknown> = {};
  for (const from of dtype === 'F32' ? ['F32'] as const : [dtype, 'F32'] as const) {
    // One set of bytes per dtype, sent `reps` times: each send is a new version all the same.
    const tensors = trainerTensors(original, 0.99, from);
    const runs: (Awaited<ReturnType<typeof update>> & { trainerBytes: number })[] = [];
    for (let i = 0; i < reps; i++) runs.push({ ...(await update(w, tensors)), trainerBytes: bytesOf(tensors) });
    const m = (k: 'load' | 'finish' | 'build') => median(runs.map((r) => r[k]));
    const total = m('load') + m('finish');
    updates[`from ${from}`] = {
      trainerBytes: runs[0].trainerBytes,
      loadWeightsSeconds: round(m('load')), finishSeconds: round(m('finish')), sessionBuildSeconds: round(m('build')),
      commitRestSeconds: round(m('finish') - m('build')), totalSeconds: round(total),
      modelGBps: round(modelBytes / GB / total), trainerGBps: round(runs[0].trainerBytes / GB / total),
      loadWeightsGBps: round(runs[0].trainerBytes / GB / m('load')), sessionBuildGBps: round(modelBytes / GB / m('build')),
      sessionBuildsPerUpdate: runs.map((r) => r.builds), versions: runs.map((r) => r.version),
    };
    log(`update from ${from}`, updates[`from ${from}`]);
  }
  results.update = updates;
  const served = await gen(w);
  check(served.metaInfo.weights_version === reps * Object.keys(updates).length && !same(served, r0), 'the last update is served (its version, a changed output)');

  if (args.sleep) {
    await new Promise((r) => setTimeout(r, 200)); // retired sessions released
    const before = await gen(w);
    const mem: Record<string, number | undefined> = { beforeWorker: beforeMiB, awake: deviceMemoryMiB(device) };
    const held = { ...w.worker.weights.set } as Record<ComponentName, WeightMap>;
    await w.executeMethod('sleep', { level: 1 });
    mem.level1 = deviceMemoryMiB(device);
    t0 = now();
    await w.executeMethod('wakeUp');
    const wake1 = now() - t0;
    check(same(await gen(w), before), 'sleep 1 + wake: same output, bit for bit');
    await w.executeMethod('sleep', { level: 2 });
    mem.level2 = deviceMemoryMiB(device);
    t0 = now();
    await w.executeMethod('wakeUp', ['sessions']);
    for (const [c, map] of Object.entries(held)) await w.executeMethod('loadWeights', { component: c, source: Object.fromEntries(map), bucket: true });
    await w.executeMethod('finishWeightUpdate');
    const wake2 = now() - t0;
    check(same(await gen(w), before), 'sleep 2 + wake + loadWeights: same output, bit for bit');
    results.sleep = {
      deviceMiB: mem, wakeLevel1Seconds: round(wake1), wakeLevel2Seconds: round(wake2),
      level1: sleepMemory(mem.beforeWorker, mem.awake, mem.level1), level2: sleepMemory(mem.beforeWorker, mem.awake, mem.level2),
    };
    log('sleep', results.sleep);
  }
} finally {
  await w.close();
}
results.failures = failures;
log('results in', writeResults(`weight-scale-${device}`, results, args.out));
if (failures.length) process.exitCode = 1;
