// Issue 10 item 6: python/omni_ref's DiT in the worker against PyTorch, same model and batch
// (BENCHMARKS.md, "The DiT against PyTorch"; scripts/device-dit-bench.sh runs both sides).
// Reads what `python3 -m omni_ref.bench_dit --out DIR` wrote: DIR/<precision>/ model folders,
// DIR/reference.safetensors and DIR/torch.json. For each precision folder, in one worker:
// - load: worker creation (folder read, checks, session build);
// - parity: the transformer on PyTorch's 2 reference rows, max |diff| against PyTorch float32 and
//   bfloat16 autocast (a float32 folder must agree within 1e-3 of the output's scale: same model);
// - transformer: the transformer component alone on 2 x images rows (session run, host data in
//   and out), median of reps;
// - step: the worker's step, (T(10 steps) - T(2 steps)) / 8 generating `images` images with CFG
//   (one transformer call of 2 x images rows, the CFG combination and the scheduler step), median
//   of reps: the figure set against PyTorch's CFG step.
// Ratios are PyTorch seconds / worker seconds (>= 1: the worker is faster); goals: >= 1.0 against
// bf16 autocast eager, >= 0.8 against bf16 autocast + torch.compile. Exit 1 when a check fails.
//   node bin/run-ts.js bench/dit-vs-torch.ts --dir /tmp/dit/d14 --device cuda --json out/dit-d14.json
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareDeviceEnvironment } from '../core/model/execution-provider.ts';
import type { PRECISIONS } from '../core/model/precision.ts';
import type { RolloutData } from '../core/protocol.ts';
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';
import { readSafetensorsTensors } from '../core/tensors/safetensors.ts';
import { f32, type HostTensor } from '../core/tensors/tensor.ts';
import type { ModelSpec } from '../core/model/manifest.ts';
import type { OnnxComponent } from '../core/model/onnx-component.ts';
import type { WeightMap } from '../core/model/weights.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { benchWorker, median, round } from './weights-common.ts';
import { deviceMemoryMiB, machine, writeResults } from './support.ts';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    device: { type: 'string', default: 'cuda' },
    precisions: { type: 'string', default: '' }, // default: every precision folder in --dir
    images: { type: 'string', default: '8' },
    reps: { type: 'string', default: '3' },
    json: { type: 'string', default: '' }, // results file (default bench/results/dit-vs-torch-<device>.json)
  },
});
if (!args.dir) throw new Error('--dir is required: the folder python3 -m omni_ref.bench_dit --out wrote');
const dir = args.dir;
const device = args.device as 'cpu' | 'cuda';
const images = Number(args.images);
const reps = Number(args.reps);
prepareDeviceEnvironment(device, false);
// Missing when the PyTorch side was cut short (its folders are written first): the worker is still measured.
const torchPath = join(dir, 'torch.json');
const torch: TorchResults = existsSync(torchPath) ? JSON.parse(readFileSync(torchPath, 'utf8')) : { steps: {}, missing: torchPath };
// Half precisions first: they carry the goals, and a stage cut short by its time cap loses float32 first.
// "-fused" folders: the same model with fused attention and GELU (python/omni_ref/dit_onnx.py).
const ORDER = ['bfloat16', 'float16', 'float32'] as const satisfies readonly (typeof PRECISIONS)[number][];
const VARIANTS = ORDER.flatMap((p) => [`${p}-fused`, p]);
const precisions = args.precisions ? args.precisions.split(',') : VARIANTS.filter((p) => existsSync(join(dir, p, 'model.json')));

interface TorchResults {
  config?: Record<string, number>;
  steps: Record<string, { median?: number; error?: string; skipped?: string }>;
  [k: string]: unknown;
}

const log = (line: string) => process.stdout.write(`${line}\n`);
const now = () => performance.now() / 1000;
const gen = (w: WorkerWrapperBase, reqs: unknown[]) => w.executeMethod('generate', reqs) as Promise<RolloutData>;
const requests = (steps: number) => Array.from({ length: images }, (_, i) => ({ prompt: `a red circle ${i}`, seed: 100 + i, guidanceScale: 4.5, steps }));

function diff(a: HostTensor, b: HostTensor): { max: number; mean: number; scale: number } {
  let max = 0, sum = 0, scale = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(Number(a.data[i]) - Number(b.data[i]));
    max = Math.max(max, d);
    sum += d;
    scale = Math.max(scale, Math.abs(Number(b.data[i])));
  }
  return { max, mean: sum / a.data.length, scale };
}

/** Seeded float32 transformer inputs for `rows` rows, of the model's shapes. */
function rowsFor(spec: ModelSpec, rows: number): Record<string, HostTensor> {
  const side = (n: number) => n / spec.latent.downscale;
  const shapes: Record<string, number[]> = {
    hidden_states: [rows, spec.latent.channels, side(spec.image.height), side(spec.image.width)],
    encoder_hidden_states: [rows, spec.text.maxLength, spec.text.hiddenSize],
    pooled_projections: [rows, spec.text.pooledSize],
  };
  const out: Record<string, HostTensor> = {};
  Object.entries(shapes).forEach(([name, shape], stream) => {
    out[name] = f32(shape);
    fillGaussian(7, stream, out[name].data as Float32Array);
  });
  out.timestep = f32([rows], new Float32Array(rows).fill(750));
  return out;
}

/** The transformer on PyTorch's reference rows: max |diff| against its float32 and bfloat16 outputs. */
async function parity(precision: string, transformer: OnnxComponent, weights: WeightMap, ref: Map<string, HostTensor>, failures: string[]) {
  const data = Object.fromEntries(['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep'].map((n) => [n, ref.get(n)!]));
  const got = (await transformer.run(data, weights)).out_hidden_states;
  const vsTorchFloat32 = diff(got, ref.get('out_float32')!);
  if (precision.startsWith('float32') && !(vsTorchFloat32.max <= 1e-3 * Math.max(1, vsTorchFloat32.scale))) {
    failures.push(`${precision}: the float32 graph differs from PyTorch float32 by ${vsTorchFloat32.max} (scale ${vsTorchFloat32.scale}): not the same model`);
  }
  const bf16 = ref.get('out_bf16_autocast');
  return { vsTorchFloat32, ...(bf16 ? { vsTorchBf16Autocast: diff(got, bf16) } : {}) };
}

async function measure(precision: string, ref: Map<string, HostTensor> | undefined, failures: string[]) {
  const folder = join(dir, precision);
  let t0 = now();
  const w = await benchWorker({ device, reps, layers: 1 }, { name: precision, config: { loadFormat: 'onnx', model: folder } }, []);
  const out: Record<string, unknown> = { loadSeconds: round(now() - t0) };
  try {
    const transformer = w.worker.model.components.transformer;
    const weights = w.worker.weights.set.transformer;
    if (!weights) throw new Error(`${folder}: the worker holds no transformer weights after load`);
    out.residency = transformer.residency;
    if (ref) out.parity = await parity(precision, transformer, weights, ref, failures);

    const rows = rowsFor(w.worker.model.spec, 2 * images);
    for (let i = 0; i < 2; i++) await transformer.run(rows, weights); // warm-up: arena, kernels
    const alone: number[] = [];
    for (let i = 0; i < reps; i++) {
      t0 = now();
      await transformer.run(rows, weights);
      alone.push(now() - t0);
    }
    out.transformerSeconds = round(median(alone), 4);

    await gen(w, requests(2)); // warm-up: prompt cache, the sampler's buffers
    const per: number[] = [];
    for (let i = 0; i < reps; i++) {
      t0 = now();
      await gen(w, requests(2));
      const lo = now() - t0;
      t0 = now();
      await gen(w, requests(10));
      per.push((now() - t0 - lo) / 8);
    }
    out.stepSeconds = round(median(per), 4);
    out.stepAll = per.map((x) => round(x, 4));
    out.deviceMiB = deviceMemoryMiB(device);
  } finally {
    await w.close();
  }
  return out;
}

/** PyTorch seconds / worker seconds for each PyTorch path that has a time. */
function ratios(worker: number): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [path, t] of Object.entries(torch.steps)) if (t.median) r[path] = round(t.median / worker);
  return r;
}

const failures: string[] = [];
if (!precisions.length) failures.push(`no model folder (<precision>/model.json) in ${dir}: the PyTorch side wrote none`);
const results: Record<string, unknown> = { dir, device, images, rows: 2 * images, cfg: true, reps, torch, worker: {} };
/** Writes the results so far (after each precision: a run cut short keeps what it measured). */
function save(): string {
  results.failures = failures;
  if (!args.json) return writeResults(`dit-vs-torch-${device}`, results);
  writeFileSync(args.json, JSON.stringify({ date: new Date().toISOString(), machine: machine(), command: process.argv.slice(1).join(' '), results }, null, 2));
  return args.json;
}
const refPath = join(dir, 'reference.safetensors');
const ref = existsSync(refPath) ? new Map((await readSafetensorsTensors(refPath)).tensors) : undefined;
log(`DiT ${JSON.stringify(torch.config ?? 'unknown: no torch.json')}, ${images} images with CFG on ${device} (${machine()})`);
for (const [path, t] of Object.entries(torch.steps)) log(`  PyTorch ${path}: ${t.median ? `${round(t.median, 4)} s/step` : t.error ?? t.skipped}`);
for (const precision of precisions) {
  let m: Record<string, unknown>;
  try {
    m = await measure(precision, ref, failures);
  } catch (e) { // one precision failing (a missing kernel, memory) leaves the others measured
    m = { error: (e as Error).message.slice(0, 2000) };
    failures.push(`${precision}: ${m.error}`);
  }
  if (typeof m.stepSeconds === 'number') {
    m.ratioStep = ratios(m.stepSeconds);
    m.ratioTransformer = ratios(m.transformerSeconds as number);
    const r = m.ratioStep as Record<string, number>;
    m.goals = { vsEager: r.bf16_autocast_eager === undefined ? null : r.bf16_autocast_eager >= 1, vsCompile: r.bf16_autocast_compile === undefined ? null : r.bf16_autocast_compile >= 0.8 };
  }
  (results.worker as Record<string, unknown>)[precision] = m;
  log(`worker ${precision}: ${JSON.stringify(m)}`);
  save();
}

const path = save();
log(`results in ${path}`);
if (failures.length) {
  log(`${failures.length} check(s) failed:\n  ${failures.join('\n  ')}`);
  process.exitCode = 1;
}
