// A LoRA adapter switch between requests (issue 10 item 4: under 10 ms on the GPU), with the
// worker's weight residency (session on CUDA: a merged adapter is a session of its own, cached).
// Two adapters loaded (addLora: merged and its session built, off the request path), then one
// request (1 image, few steps) at a time in the order a a b b base base a a ...: the switch's
// cost is a request right after another adapter minus the same request right after its own.
// Also: the first use of an adapter (addLora: merge + session build; then its first request, the
// new session's first run), a scale never merged
// before (merged and built on the request path), device memory per adapter, and, with
// --evict-check, the same switches with spareSessions 1 (the default: one session kept beside
// the serving one, so two adapters in turn rebuild a session on every switch).
//   node bin/run-ts.js bench/lora-switch.ts --device cuda [--hidden 1024 --layers 12 --heads 16 --image 64 --dtype float16] [--reps 8] [--out FILE]
// Without --hidden: the embedded model.
import { parseArgs } from 'node:util';
import { prepareDeviceEnvironment } from '../core/model/execution-provider.ts';
import type { RolloutData } from '../core/protocol.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { benchModels, benchWorker, median, round, type BenchModel, type BenchOptions } from './weights-common.ts';
import { deviceMemoryMiB, writeResults } from './support.ts';
import { queryAdapter } from './lora-adapter.ts';
import { watchSessionBuilds, withBuilds } from './session-builds.ts';
import { labelTransitions, switchCosts, switchOrder } from './derived-figures.ts';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    residency: { type: 'string', default: 'auto' },
    spare: { type: 'string', default: '2' },
    reps: { type: 'string', default: '8' },
    steps: { type: 'string', default: '4' },
    hidden: { type: 'string' },
    layers: { type: 'string', default: '12' },
    heads: { type: 'string', default: '16' },
    image: { type: 'string', default: '64' },
    dtype: { type: 'string', default: 'float32' },
    'evict-check': { type: 'boolean', default: false },
    'new-scales': { type: 'string', default: '3' },
    out: { type: 'string', default: '' },
  },
});
const device = args.device as BenchOptions['device'];
const o: BenchOptions = { device, reps: Number(args.reps), layers: 1 };
prepareDeviceEnvironment(device, false);
const builds = watchSessionBuilds();
const log = (...xs: unknown[]) => process.stdout.write(xs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ') + '\n');
const model: BenchModel = args.hidden
  ? {
    name: `dummy ${args.hidden}x${args.layers} ${args.dtype}`,
    config: { loadFormat: 'dummy', loadOptions: { hidden: Number(args.hidden), layers: Number(args.layers), heads: Number(args.heads), height: Number(args.image), width: Number(args.image), dtype: args.dtype } },
  }
  : benchModels(o).embedded;
const plugins = ['lora', ...(model.config.loadFormat === 'dummy' ? ['dummy-loader'] : [])];
const request = (lora: string, scale?: number) => [{ prompt: 'a red circle', seed: 7, steps: Number(args.steps), guidanceScale: 4.5, ...(lora ? { lora: scale === undefined ? lora : { name: lora, scale } } : {}) }];
const gen = (w: WorkerWrapperBase, lora: string, scale?: number) => w.executeMethod('generate', request(lora, scale)) as Promise<RolloutData>;
const latents = (r: RolloutData) => r.batch.latents_clean!;
const same = (a: HostTensor, b: HostTensor) => a.data.every((x, i) => x === b.data[i]);

async function worker(spare: number): Promise<WorkerWrapperBase> {
  const config = { ...model.config, weightResidency: args.residency, spareSessions: spare } as BenchModel['config'];
  return benchWorker(o, { ...model, config }, plugins);
}

/** Times each request of `order` (one at a time) and counts the session builds the run made. */
async function timedOrder(w: WorkerWrapperBase, order: string[]) {
  const seconds: number[] = [];
  const outputs = new Map<string, HostTensor>();
  let consistent = true;
  const run = await withBuilds(builds, async () => {
    for (const name of order) {
      const t0 = performance.now();
      const r = await gen(w, name);
      seconds.push((performance.now() - t0) / 1000);
      const first = outputs.get(name);
      if (first) consistent &&= same(first, latents(r));
      else outputs.set(name, latents(r));
    }
  });
  const costs = Object.fromEntries(Object.entries(switchCosts(labelTransitions(order, seconds))).map(([k, c]) =>
    [k, { afterOther: round(c.afterOther), afterSame: round(c.afterSame), overheadMs: round(c.overheadMs), samples: c.samples }]));
  const distinct = [...outputs.values()].every((x, i, all) => all.every((y, j) => i === j || !same(x, y)));
  return { costs, sessionBuilds: run.builds, sessionBuildSeconds: round(run.buildSeconds), consistentOutputs: consistent, adaptersChangeOutput: distinct };
}

const results: Record<string, unknown> = { device, model: model.name, steps: Number(args.steps), images: 1, cfg: true };
const memory: Record<string, number | undefined> = { before: deviceMemoryMiB(device) };
const w = await worker(Number(args.spare));
let failed = false;
try {
  const residency = w.worker.model.components.transformer.residency;
  results.residency = residency;
  results.spareSessions = Number(args.spare);
  await gen(w, '');
  await gen(w, '');
  memory.baseOnly = deviceMemoryMiB(device);
  const base = w.worker.weights.get('transformer')!;
  const firstUse: Record<string, unknown>[] = [];
  for (const [name, seed] of [['a', 1], ['b', 2]] as const) {
    const add = await withBuilds(builds, () => w.executeMethod('addLora', { name, ...queryAdapter(base, seed) }));
    // The first run of a session just built: on CUDA, arena growth and kernel choices happen here.
    const first = await withBuilds(builds, () => gen(w, name));
    firstUse.push({
      adapter: name, addLoraSeconds: round(add.seconds), sessionBuilds: add.builds, sessionBuildSeconds: round(add.buildSeconds),
      mergeAndRestSeconds: round(add.seconds - add.buildSeconds), firstRequestSeconds: round(first.seconds), firstRequestBuilds: first.builds,
    });
    memory[`with ${name}`] = deviceMemoryMiB(device);
  }
  for (const name of ['a', 'b', '', 'a', 'b', '']) await gen(w, name); // warm-up of each session
  const order = switchOrder(['a', 'b', ''], Number(args.reps));
  const run = await timedOrder(w, order);
  // What the first request on an adapter's new session cost beyond a request on a warm one.
  for (const f of firstUse) f.firstRequestExtraMs = round(((f.firstRequestSeconds as number) - run.costs[f.adapter as string].afterSame) * 1000);
  results.firstUse = firstUse;
  log('first use (addLora, then its first request)', firstUse);
  results.switch = run;
  log('switch', run);
  if (!run.consistentOutputs || !run.adaptersChangeOutput) failed = true;

  // A scale never merged: merge + session build on the request path, against a request on a built session.
  const fresh: number[] = [];
  const warm: number[] = [];
  const freshBuilds: number[] = [];
  for (let i = 0; i < Number(args['new-scales']); i++) {
    const r = await withBuilds(builds, () => gen(w, 'a', 0.5 + i / 8));
    fresh.push(r.seconds);
    freshBuilds.push(r.builds);
    const t0 = performance.now();
    await gen(w, 'a', 0.5 + i / 8);
    warm.push((performance.now() - t0) / 1000);
  }
  results.newScaleOnRequest = { requestSeconds: round(median(fresh)), againSeconds: round(median(warm)), firstUseSeconds: round(median(fresh) - median(warm)), sessionBuilds: freshBuilds };
  log('new scale on the request path', results.newScaleOnRequest);
} finally {
  await w.close();
}
results.deviceMiB = memory;
log('device MiB', memory);

if (args['evict-check']) {
  const w1 = await worker(1);
  try {
    const base = w1.worker.weights.get('transformer')!;
    for (const [name, seed] of [['a', 1], ['b', 2]] as const) await w1.executeMethod('addLora', { name, ...queryAdapter(base, seed) });
    await gen(w1, '');
    const run = await timedOrder(w1, switchOrder(['a', 'b'], Math.min(Number(args.reps), 3)));
    results.spareSessions1 = run;
    log('spareSessions 1', run);
  } finally {
    await w1.close();
  }
}

const path = writeResults(`lora-switch-${device}`, results, args.out);
log('results in', path);
if (failed) {
  log('FAIL: outputs under an adapter changed between its requests, or an adapter did not change the output');
  process.exitCode = 1;
}
