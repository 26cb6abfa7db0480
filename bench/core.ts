// Issue 2's figures: images/s at batch 1, 4, 16 through the full worker (worker thread) against a
// bare loop of ONNX Runtime run calls over the same graphs and batch, in the same process,
// interleaved; and the caller's event-loop delay during a rollout. The bare loop keeps the weights
// where the worker does (config weightResidency, 'auto': initializers in the session on CUDA,
// inputs fed each run on the CPU), so that both pay the same copies.
//   node bin/run-ts.js bench/core.ts [--device cpu|cuda] [--reps 5] [--residency auto|inputs|session] [--out FILE]
import * as ort from 'onnxruntime-node';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createWorker, withDefaultModel } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { loadModelFolder } from '../core/model/folder-loader.ts';
import { buildDummyModel } from '../plugins/dummy-loader/index.ts';
import { dummyArchSchema } from '../plugins/dummy-loader/architecture.ts';
import { residentSession, toOrt } from '../core/model/onnx-component.ts';
import { sessionOptions, type DeviceName } from '../core/model/execution-provider.ts';
import { DATA_INPUTS, type ComponentName } from '../core/model/manifest.ts';
import type { ModelSource } from '../core/model/source.ts';
import { median, timeIt, writeResults } from './support.ts';
import { findInferenceThread, preemptions, threadIds } from './thread-preemptions.ts';

const { values: args } = parseArgs({ options: { device: { type: 'string', default: 'cpu' }, reps: { type: 'string', default: '5' }, threads: { type: 'string' }, residency: { type: 'string', default: 'auto' }, out: { type: 'string' } } });
const device = args.device as DeviceName;
const reps = Number(args.reps);
const STARTUP_CALLS = 10;
const threads = args.threads ? Number(args.threads) : undefined;
const config = withDefaultModel(resolveConfig({ device, threads, maxBatchSize: 16, promptCacheSize: 0, weightResidency: args.residency as 'auto' }));
const source: ModelSource = config.loadFormat === 'dummy'
  ? buildDummyModel(dummyArchSchema.parse(config.loadOptions))
  : await loadModelFolder(config.model!);
const { spec } = source;
// The worker's rule for an 'auto' residency (diffusion-worker.ts: session on CUDA; the embedded model has no bfloat16).
const resident = config.weightResidency === 'session' || (config.weightResidency === 'auto' && device === 'cuda');
const steps = spec.defaults.steps;
const guidance = spec.defaults.guidanceScale;

/** The bare loop: text encoder (prompt + negative), `steps` doubled-batch transformer runs, decoder. */
async function bareLoop(batch: number): Promise<() => Promise<void>> {
  const sessions: Partial<Record<ComponentName, ort.InferenceSession>> = {};
  const weightFeeds: Partial<Record<ComponentName, Record<string, ort.Tensor>>> = {};
  for (const [name, c] of Object.entries(source.components) as [ComponentName, ModelSource['components']['transformer']][]) {
    const built = resident ? residentSession(c.graph, c.weights, sessionOptions(device, threads)) : { graph: c.graph, options: sessionOptions(device, threads) };
    const s = await ort.InferenceSession.create(built.graph, built.options);
    sessions[name] = s;
    const data = new Set(DATA_INPUTS[name]);
    weightFeeds[name] = Object.fromEntries(s.inputNames.filter((n) => !data.has(n)).map((n) => [n, toOrt(c.weights.get(n)!)]));
  }
  const L = spec.text.maxLength, D = spec.text.hiddenSize, P = spec.text.pooledSize;
  const C = spec.latent.channels, h = spec.image.height / spec.latent.downscale, w = spec.image.width / spec.latent.downscale;
  const rows = guidance > 1 ? 2 * batch : batch;
  const ids = new ort.Tensor('int64', new BigInt64Array(2 * L).fill(1n), [2, L]);
  const x = new ort.Tensor('float32', new Float32Array(rows * C * h * w).fill(0.1), [rows, C, h, w]);
  const feeds = {
    hidden_states: x,
    encoder_hidden_states: new ort.Tensor('float32', new Float32Array(rows * L * D).fill(0.1), [rows, L, D]),
    pooled_projections: new ort.Tensor('float32', new Float32Array(rows * P).fill(0.1), [rows, P]),
    timestep: new ort.Tensor('float32', new Float32Array(rows).fill(500), [rows]),
    ...weightFeeds.transformer,
  };
  const latent = new ort.Tensor('float32', new Float32Array(batch * C * h * w), [batch, C, h, w]);
  return async () => {
    await sessions.text_encoder!.run({ input_ids: ids, ...weightFeeds.text_encoder });
    for (let i = 0; i < steps; i++) await sessions.transformer!.run(feeds);
    if (sessions.decoder) await sessions.decoder.run({ latent_sample: latent, ...weightFeeds.decoder });
  };
}

const threadsBefore = threadIds();
const worker = await createWorker(config);
let inferenceThread: string | undefined;
// The same worker on the caller's thread, with ONNX Runtime's share of its time measured:
// tells the thread hop and the pipeline's own JS apart from the sessions' work.
const inline = await createWorker({ ...config, executor: 'inline' });
let ortSeconds = 0;
const proto = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
const sessionRun = proto.run;
proto.run = async function (this: ort.InferenceSession, ...a: Parameters<typeof sessionRun>) {
  const t0 = performance.now();
  try {
    return await sessionRun.apply(this, a);
  } finally {
    ortSeconds += (performance.now() - t0) / 1000;
  }
} as typeof sessionRun;
const results: Record<string, unknown>[] = [];
let seed = 0;
// A new inference thread often starts on the core ONNX Runtime pins its pool thread to and shares
// it for its first calls (hundreds of preemptions each, ~25% slower) until the scheduler moves it:
// startup, not the steady state measured here (BENCHMARKS.md, "Batch-1 regression, investigated").
for (let i = 0; i < STARTUP_CALLS; i++) {
  await worker.generate([{ prompt: 'warm-up', seed: i }]);
  await inline.generate([{ prompt: 'warm-up', seed: i }]);
}
for (const batch of [1, 4, 16]) {
  const bare = await bareLoop(batch);
  const request = () => [{ prompt: 'a red circle at the top left on a white background', numOutputsPerPrompt: batch, seed: (seed += batch) }];
  await worker.generate(request()); // warm-up
  await inline.generate(request());
  await bare();
  inferenceThread ??= findInferenceThread(threadsBefore);
  const tw: number[] = [], tb: number[] = [], ti: number[] = [], tiOrt: number[] = [], pw: number[] = [];
  for (let r = 0; r < reps; r++) {
    const p0 = preemptions(inferenceThread);
    tw.push(await timeIt(() => worker.generate(request())));
    const p1 = preemptions(inferenceThread);
    if (p0 !== undefined && p1 !== undefined) pw.push(p1 - p0);
    tb.push(await timeIt(bare));
    ortSeconds = 0;
    ti.push(await timeIt(() => inline.generate(request())));
    tiOrt.push(ortSeconds);
  }
  const workerIps = batch / median(tw), bareIps = batch / median(tb), inlineIps = batch / median(ti);
  results.push({
    batch, steps, guidance,
    workerImagesPerSec: +workerIps.toFixed(2),
    bareLoopImagesPerSec: +bareIps.toFixed(2),
    ratio: +(workerIps / bareIps).toFixed(3),
    inlineWorkerImagesPerSec: +inlineIps.toFixed(2),
    inlineShareInSessionRun: +(median(tiOrt) / median(ti)).toFixed(3),
    // Tens: the thread kept its own core; hundreds: it shared one with ONNX Runtime's pinned pool thread (thread-preemptions.ts).
    ...(pw.length ? { inferenceThreadPreemptionsPerCall: median(pw) } : {}),
  });
  console.log(results.at(-1));
}

// Event-loop delay on the caller's thread while the worker thread runs batch-16 rollouts.
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
const ticker = setInterval(() => {}, 5); // keeps the loop busy with timers, like a server would
for (let r = 0; r < reps; r++) await worker.generate([{ prompt: 'a blue square', numOutputsPerPrompt: 16, seed: r }]);
clearInterval(ticker);
h.disable();
const delay = { p50Ms: +(h.percentile(50) / 1e6).toFixed(2), p99Ms: +(h.percentile(99) / 1e6).toFixed(2), maxMs: +(h.max / 1e6).toFixed(2) };
console.log('event-loop delay during rollouts', delay);
await worker.close();
await inline.close();
const path = writeResults(`core-${device}`, { model: source.origin.split('/').slice(-1)[0], device, weightResidency: resident ? 'session' : 'inputs', threads: threads ?? 'ort default', throughput: results, eventLoopDelay: delay }, args.out);
console.log(`wrote ${path}`);
