// Weight residency on one device (issue 10 item 1): the dummy architecture's transformer with its
// parameters fed as inputs every run (today's design) vs the same graph with the parameters as
// initializers supplied from memory (SessionOptions.externalData), which stay in the session.
// Per model: session build time for each (for initializers = the cost of a weight update: a new
// session built beside the serving one), median step time over timed runs, device memory.
//   node bin/run-ts.js bench/gpu-residency.ts --device cuda --models 1024x12,2048x24 --rows 16 --image 64
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { transformerGraph, dummyArchSchema } from '../plugins/dummy-loader/architecture.ts';
import { prepareDeviceEnvironment, sessionOptions, type DeviceName } from '../core/model/execution-provider.ts';
import { toOrt } from '../core/model/onnx-component.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import { GraphBuilder } from '../plugins/dummy-loader/onnx-builder.ts';
import { asExternalInitializers } from '../core/model/initializer-graph.ts';
import { deviceMemoryMiB as supportDeviceMiB, median, timeIt, writeResults } from './support.ts';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    models: { type: 'string', default: '64x2' }, // hidden x layers, comma-separated
    rows: { type: 'string', default: '16' }, // batch rows per run (8 images with CFG = 16)
    image: { type: 'string', default: '32' }, // image side; latent side = image / 2
    reps: { type: 'string', default: '5' },
    out: { type: 'string' },
    tf32: { type: 'boolean', default: false }, // the worker's default is strict float32 (cudaTf32 off)
    // graph optimization levels for the initializer session: 'all' folds the weight transposes at
    // build (on the CPU); 'all-nofold' is 'all' without constant folding; 'basic', 'disabled'
    levels: { type: 'string', default: 'all' },
  },
});
const device = args.device as DeviceName;
const rows = Number(args.rows);
const reps = Number(args.reps);
prepareDeviceEnvironment(device, args.tf32!);
const levels = args.levels!.split(',') as ('all' | 'all-nofold' | 'basic' | 'disabled')[];
const NO_FOLDING = { optimization: { disable_specified_optimizers: 'ConstantFolding' } };
const hostRssMB = () => Math.round(process.memoryUsage().rss / 1e6);

const deviceMemoryMiB = () => supportDeviceMiB(device);

/** Cheap deterministic weights: the values do not change the timing, only finite ones matter. */
function weightsFor(params: Map<string, number[]>): Map<string, HostTensor> {
  const map = new Map<string, HostTensor>();
  let k = 1;
  for (const [name, shape] of params) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const std = 1 / Math.sqrt(shape.length > 1 ? shape[1] : 100);
    for (let i = 0; i < n; i++) data[i] = std * (((Math.imul(i + k, 2654435761) >>> 0) % 2001) / 1000 - 1);
    map.set(name, { dtype: 'F32', shape, data });
    k += 7919;
  }
  return map;
}

async function timeRuns(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<number[]> {
  for (let i = 0; i < 2; i++) await session.run(feeds);
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) ts.push(await timeIt(() => session.run(feeds)));
  return ts;
}

/**
 * (b) WebGPU only: parameters uploaded once as gpu-buffer tensors (the outputs of an identity
 * session that prefers gpu-buffer outputs), then fed as inputs that are already on the device.
 */
async function gpuBufferRuns(session: ort.InferenceSession, weights: Map<string, HostTensor>, data: Record<string, ort.Tensor>) {
  try {
    const g = new GraphBuilder('upload');
    const feeds: Record<string, ort.Tensor> = {};
    for (const [n, t] of weights) {
      g.input(n, 'float', t.shape);
      g.op('Identity', [n], {}, `${n}:device`);
      g.output(`${n}:device`, t.shape);
      feeds[n] = toOrt(t);
    }
    const upload = await ort.InferenceSession.create(g.encode(), { ...sessionOptions(device, undefined), preferredOutputLocation: 'gpu-buffer' });
    const out = await upload.run(feeds);
    const onDevice: Record<string, ort.Tensor> = {};
    for (const n of weights.keys()) onDevice[n] = out[`${n}:device`];
    const location = onDevice[weights.keys().next().value!].location;
    const runs = await timeRuns(session, { ...data, ...onDevice });
    for (const t of Object.values(out)) t.dispose();
    await upload.release();
    return { stepS: median(runs), runs, location };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const results = [];
for (const spec of args.models!.split(',')) {
  const [hidden, layers] = spec.split('x').map(Number);
  const side = Number(args.image);
  const arch = dummyArchSchema.parse({ hidden, layers, height: side, width: side, downscale: 2, channels: 4, textDim: 64, maxLength: 16 });
  const { graph, params } = transformerGraph(arch);
  const weights = weightsFor(params);
  const weightBytes = [...weights.values()].reduce((s, t) => s + t.data.byteLength, 0);
  const h = side / 2;
  const fill = (n: number, v: number) => new Float32Array(n).fill(v);
  const data = {
    hidden_states: new ort.Tensor('float32', fill(rows * 4 * h * h, 0.1), [rows, 4, h, h]),
    encoder_hidden_states: new ort.Tensor('float32', fill(rows * 16 * 64, 0.05), [rows, 16, 64]),
    pooled_projections: new ort.Tensor('float32', fill(rows * 64, 0.02), [rows, 64]),
    timestep: new ort.Tensor('float32', fill(rows, 500), [rows]),
  };
  const options = sessionOptions(device, undefined);
  const mem0 = deviceMemoryMiB();

  // (today) parameters are inputs, copied host -> device on every run
  let inputs!: ort.InferenceSession;
  const inputsBuild = await timeIt(async () => { inputs = await ort.InferenceSession.create(graph, options); });
  const weightFeeds: Record<string, ort.Tensor> = {};
  for (const [n, t] of weights) weightFeeds[n] = toOrt(t);
  const inputsRuns = await timeRuns(inputs, { ...data, ...weightFeeds });
  const inputsOut = (await inputs.run({ ...data, ...weightFeeds })).out_hidden_states.data as Float32Array;
  const memInputs = deviceMemoryMiB();
  const buffers = device === 'webgpu' ? await gpuBufferRuns(inputs, weights, data) : undefined;
  await inputs.release();

  // (a) parameters as initializers from memory; a second build beside the first = a weight update
  const ext = await (async () => {
    const t0 = performance.now();
    const x = asExternalInitializers(graph, weights);
    return { ...x, transformS: (performance.now() - t0) / 1000 };
  })();
  const initializers: Record<string, unknown> = { transformS: ext.transformS };
  let initOut: Float32Array | undefined;
  let memInit, memBoth, memAfterSwap;
  for (const level of levels) {
    const opts: ort.InferenceSession.SessionOptions = level === 'all-nofold'
      ? { ...options, graphOptimizationLevel: 'all', extra: { ...options.extra, ...NO_FOLDING }, externalData: ext.externalData }
      : { ...options, graphOptimizationLevel: level, externalData: ext.externalData };
    const rssBefore = hostRssMB();
    let init!: ort.InferenceSession;
    const buildS = await timeIt(async () => { init = await ort.InferenceSession.create(ext.graph, opts); });
    const hostRssGrowthMB = hostRssMB() - rssBefore; // what the session holds in host memory
    const runs = await timeRuns(init, data);
    initOut ??= (await init.run(data)).out_hidden_states.data as Float32Array;
    memInit ??= deviceMemoryMiB();
    let next!: ort.InferenceSession;
    const updateBuildS = await timeIt(async () => { next = await ort.InferenceSession.create(ext.graph, opts); });
    memBoth ??= deviceMemoryMiB();
    await init.release();
    memAfterSwap ??= deviceMemoryMiB();
    await next.release();
    initializers[level] = { buildS, stepS: median(runs), runs, updateBuildS, hostRssGrowthMB };
  }
  const first = initializers[levels[0]] as { buildS: number; stepS: number; updateBuildS: number };

  let maxDiff = 0;
  for (let i = 0; i < inputsOut.length; i++) maxDiff = Math.max(maxDiff, Math.abs(inputsOut[i] - initOut![i]));
  const row = {
    hidden, layers, rows, tokens: h * h, params: weightBytes / 4, weightBytes,
    inputs: { buildS: inputsBuild, stepS: median(inputsRuns), runs: inputsRuns },
    initializers,
    ...(buffers ? { gpuBufferInputs: buffers } : {}),
    stepRatio: median(inputsRuns) / first.stepS,
    deviceMiB: { before: mem0, inputs: memInputs, initializers: memInit, twoSessions: memBoth, afterSwap: memAfterSwap },
    maxAbsDiff: maxDiff,
  };
  results.push(row);
  const perLevel = levels.map((l) => {
    const r = initializers[l] as { buildS: number; stepS: number; updateBuildS: number };
    return `${l}: ${r.stepS.toFixed(4)} s/step, build ${r.buildS.toFixed(2)} s, update build ${r.updateBuildS.toFixed(2)} s, host RSS +${(r as { hostRssGrowthMB?: number }).hostRssGrowthMB} MB`;
  }).join('; ');
  console.log(`${hidden}x${layers} (${(weightBytes / 1e9).toFixed(2)} GB, ${rows} rows x ${h * h} tokens): ` +
    `inputs ${row.inputs.stepS.toFixed(4)} s/step (build ${inputsBuild.toFixed(2)} s) | initializers ${perLevel} | ` +
    `x${row.stepRatio.toFixed(2)} | max |diff| ${maxDiff.toExponential(2)} | device MiB ${JSON.stringify(row.deviceMiB)}` +
    (buffers ? ` | gpu-buffer inputs ${JSON.stringify(buffers).slice(0, 120)}` : ''));
}
const path = writeResults(args.out ?? `gpu-residency-${device}`, { device, tf32: args.tf32, ortVersion: ort.env.versions.common, results });
console.log(`results: ${path}`);
