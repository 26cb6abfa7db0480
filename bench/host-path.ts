// The host path of one big RL rollout: everything a worker does around ONNX Runtime (seeded noise,
// the SDE step and its log-probs, CFG, latent capture, the finite check, the rollout's assembly and
// its safetensors answer), per phase, for the Flow-GRPO example's rollout: 32 prompts x 16 samples,
// 10 steps, CFG 4.5, an SDE window of 2 in [0, 4], latents + timesteps + log-probs captured.
// The model has the embedded model's host-side shapes (32x32x3 latents, 24 x 128 text embeddings)
// and a denoiser of hidden size 8 on one layer (dummy loader), so that ONNX Runtime's share is small
// and the host path shows; the runtime's own time is measured around InferenceSession.run.
//   node bin/run-ts.js bench/host-path.ts [--reps 3] [--baseline <git rev | folder>] [--top] [--device cuda] [--embedded]
// --embedded runs the embedded model itself (on a GPU: the Flow-GRPO example's setting).
// --baseline loads the project at that commit (git archive into a temporary folder), or the sources
// in that folder, into the same process and alternates its rollouts with this tree's: same seeds,
// outputs compared bit for bit, the ratio of host-path times from one process. Phases come from a
// sampling CPU profile of extra rollouts (self time by source file); timed rollouts run without the
// profiler. --top lists the functions behind 'other JS'. --save-rollout PATH writes this tree's
// last rollout (for bench/rollout-parse.py, the Python client's share).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { median, writeResults } from './support.ts';

const { values: args } = parseArgs({ options: { 'save-rollout': { type: 'string' }, device: { type: 'string', default: 'cpu' }, embedded: { type: 'boolean', default: false }, top: { type: 'boolean', default: false }, reps: { type: 'string', default: '3' }, baseline: { type: 'string' }, prompts: { type: 'string', default: '32' }, group: { type: 'string', default: '16' } } });
const reps = Number(args.reps);
const prompts = Number(args.prompts);
const group = Number(args.group);
const batch = prompts * group;
const root = fileURLToPath(new URL('..', import.meta.url));

// ONNX Runtime's time: every session.run of both trees (one onnxruntime-node module in the process).
let ortMs = 0;
const session = ort.InferenceSession as unknown as { prototype: { run: (...a: unknown[]) => Promise<unknown> } };
const run = session.prototype.run;
session.prototype.run = async function (this: unknown, ...a: unknown[]) {
  const t0 = performance.now();
  try {
    return await run.apply(this, a);
  } finally {
    ortMs += performance.now() - t0;
  }
};

interface Rollout { batch: Record<string, { data: ArrayBufferView }>; nonTensorBatch: unknown; metaInfo: unknown; toSafetensors(): Uint8Array; toSafetensorsChunks?(): Uint8Array[] }
interface Tree { name: string; dir: string; generate(requests: unknown[]): Promise<Rollout>; close(): Promise<void> }

const arch = { height: 32, width: 32, channels: 3, downscale: 1, hidden: 8, layers: 1, textDim: 128, maxLength: 24 };
const sde = { type: 'sde', noiseLevel: 0.7, window: { size: 2, range: [0, 4] } };
const capture = { latents: true, timesteps: true, logProbs: true };
const requests = (seed: number) => Array.from({ length: prompts }, (_, k) => ({
  prompt: `a ${['red', 'green', 'blue', 'yellow'][k % 4]} ${['circle', 'square', 'triangle'][k % 3]} at the top left`,
  numOutputsPerPrompt: group, seed: seed + k * group, steps: 10, guidanceScale: 4.5, sde, capture,
}));

async function openTree(name: string, dir: string): Promise<Tree> {
  const index = await import(pathToFileURL(join(dir, 'index.ts')).href);
  const { resolveConfig } = await import(pathToFileURL(join(dir, 'core/config/load-config.ts')).href);
  const base = { device: args.device, executor: 'inline', maxBatchSize: batch, plugins: ['dummy-loader', 'sde-scheduler', 'latent-capture'] };
  const config = args.embedded ? index.withDefaultModel(resolveConfig(base)) : resolveConfig({ ...base, loadFormat: 'dummy', loadOptions: arch });
  const worker = await index.createWorker(config);
  return { name, dir, generate: (r) => worker.generate(r), close: () => worker.close() };
}

/** The answer's bytes as the server sends them: chunks where the tree has them, else joined. */
const answer = (r: Rollout) => (r.toSafetensorsChunks ? r.toSafetensorsChunks() : [r.toSafetensors()]);

function digest(r: Rollout): string {
  const h = createHash('sha256');
  for (const key of Object.keys(r.batch).sort()) {
    const d = r.batch[key].data;
    h.update(key).update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  // meta_info.model is the model's path, which differs between the trees for the embedded model.
  const { model: _, ...meta } = r.metaInfo as Record<string, unknown>;
  return h.update(JSON.stringify([r.nonTensorBatch, meta])).digest('hex');
}

interface Timing { wallMs: number; ortMs: number; answerMs: number }
async function timed(tree: Tree, seed: number): Promise<Timing & { digest: string }> {
  ortMs = 0;
  const t0 = performance.now();
  const r = await tree.generate(requests(seed));
  const t1 = performance.now();
  const at = ortMs;
  answer(r);
  const t2 = performance.now();
  if (args['save-rollout'] && tree.dir === root) writeFileSync(args['save-rollout'], r.toSafetensors());
  return { wallMs: t1 - t0, ortMs: at, answerMs: t2 - t1, digest: digest(r) };
}

// Phases by source file (paths relative to the tree's root), first match wins.
const PHASES: [string, RegExp][] = [
  ['onnxruntime (session.run)', /onnxruntime-(node|common)\//],
  ['seeded noise', /core\/pipeline\/(seeded-noise|noise-source|noise-threads)\.ts/],
  ['scheduler step (SDE, Euler, log-probs)', /plugins\/sde-scheduler\/|core\/scheduler\//],
  ['CFG, transformer inputs, uint8 images', /core\/pipeline\/text-to-image\.ts/],
  ['latent capture', /plugins\/latent-capture\//],
  ['finite check', /core\/pipeline\/non-finite\.ts|core\/tensors\/finite\.ts/],
  ['runtime glue (tensors in/out)', /core\/model\//],
  ['safetensors answer', /core\/tensors\/safetensors\.ts|core\/rollout\//],
  ['garbage collector', /^\(garbage collector\)$/],
];
const OTHER = 'other JS (runner, hooks, requests)';
/** The profiler's own work (Profiler.stop building the profile): not counted. */
const PROFILER = /^node:inspector/;

/** --top: self time of the functions counted as OTHER, to find the next cost. */
const otherFrames = new Map<string, number>();

async function profiled(session: Session, tree: Tree, seed: number): Promise<Record<string, number>> {
  await session.post('Profiler.start');
  const r = await tree.generate(requests(seed));
  answer(r);
  const { profile } = await session.post('Profiler.stop');
  // A sample counts for the phase of its nearest frame that has one (a builtin such as Math.log,
  // or the runtime's native run, counts for its caller).
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const phaseOf = new Map<number, string>();
  const phase = (id: number | undefined): string => {
    if (id === undefined) return OTHER;
    let p = phaseOf.get(id);
    if (p === undefined) {
      const { url, functionName } = byId.get(id)!.callFrame;
      const where = url ? url.replace(pathToFileURL(tree.dir).href, '') : functionName;
      p = PROFILER.test(where) ? '' : PHASES.find(([, re]) => re.test(where))?.[0] ?? phase(parent.get(id));
      phaseOf.set(id, p);
    }
    return p;
  };
  const ms: Record<string, number> = {};
  const deltas = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, i) => {
    const { functionName } = byId.get(id)!.callFrame;
    if (functionName === '(idle)' || functionName === '(program)') return;
    const p = phase(id);
    if (!p) return;
    ms[p] = (ms[p] ?? 0) + (deltas[i] ?? 0) / 1000;
    if (args.top && p === OTHER) {
      const { url, lineNumber } = byId.get(id)!.callFrame;
      const key = `${functionName || '(anonymous)'} ${url.replace(pathToFileURL(tree.dir).href, '')}:${lineNumber + 1}`;
      otherFrames.set(key, (otherFrames.get(key) ?? 0) + (deltas[i] ?? 0) / 1000);
    }
  });
  return ms;
}

/**
 * The baseline's sources: a folder holding them (where the checkout has no git history, e.g.
 * `git archive REV | tar -x -C old` made elsewhere and carried along), or a commit extracted into a
 * temporary folder (removed at the end). Either uses this tree's node_modules.
 */
function baselineTree(rev: string): { dir: string; temporary: boolean } {
  const given = resolve(rev);
  if (existsSync(join(given, 'index.ts'))) {
    if (!existsSync(join(given, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(given, 'node_modules'));
    return { dir: given, temporary: false };
  }
  const dir = mkdtempSync(join(tmpdir(), 'omni-host-path-'));
  execFileSync('sh', ['-c', `git -C "${root}" archive "${rev}" | tar -x -C "${dir}"`]);
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return { dir, temporary: true };
}

const base = args.baseline ? baselineTree(args.baseline) : undefined;
const baseDir = base?.dir;
const trees = [await openTree('this tree', root)];
if (baseDir) trees.unshift(await openTree(`baseline ${args.baseline}`, baseDir));
const inspector = new Session();
inspector.connect();
await inspector.post('Profiler.enable');
await inspector.post('Profiler.setSamplingInterval', { interval: 200 });
try {
  for (const t of trees) await timed(t, 0); // warm-up: sessions, prompt cache, JIT
  const timings: Record<string, Timing[]> = Object.fromEntries(trees.map((t) => [t.name, []]));
  let identical = true;
  for (let r = 0; r < reps; r++) {
    const digests = new Set<string>();
    for (let k = 0; k < trees.length; k++) {
      const t = trees[(k + r) % trees.length];
      const { digest: d, ...timing } = await timed(t, 1000 * (r + 1));
      timings[t.name].push(timing);
      digests.add(d);
    }
    identical &&= digests.size === 1;
  }
  const phases: Record<string, Record<string, number>> = Object.fromEntries(trees.map((t) => [t.name, {}]));
  const profiledReps = Math.max(1, Math.min(2, reps));
  for (let r = 0; r < profiledReps; r++) {
    for (const t of trees) {
      for (const [p, ms] of Object.entries(await profiled(inspector, t, 5000 + r))) phases[t.name][p] = (phases[t.name][p] ?? 0) + ms / profiledReps;
    }
  }
  const summary = trees.map((t) => {
    const ts = timings[t.name];
    const wall = median(ts.map((x) => x.wallMs));
    const host = median(ts.map((x) => x.wallMs - x.ortMs + x.answerMs));
    const byPhase = Object.fromEntries([...PHASES.map(([p]) => p), OTHER].map((p) => [p, +(phases[t.name][p] ?? 0).toFixed(1)]));
    return {
      tree: t.name,
      rolloutMs: +wall.toFixed(0),
      onnxRuntimeMs: +median(ts.map((x) => x.ortMs)).toFixed(0),
      answerMs: +median(ts.map((x) => x.answerMs)).toFixed(1),
      /** rollout + answer - ONNX Runtime, per rollout and per sample */
      hostPathMs: +host.toFixed(0),
      hostPathUsPerSample: +((host * 1000) / batch).toFixed(1),
      shareOutsideOnnxRuntime: +median(ts.map((x) => (x.wallMs - x.ortMs + x.answerMs) / (x.wallMs + x.answerMs))).toFixed(3),
      profiledMsByPhase: byPhase,
    };
  });
  for (const s of summary) console.log(s);
  if (args.top) console.log([...otherFrames].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, ms]) => `${ms.toFixed(1).padStart(8)} ms  ${k}`).join('\n'));
  const results: Record<string, unknown> = { device: args.device, model: args.embedded ? 'embedded (shapes-dit)' : { dummy: arch }, batch, prompts, group, request: { steps: 10, guidanceScale: 4.5, sde, capture }, reps, summary };
  if (trees.length === 2) {
    const [base, mine] = trees.map((t) => timings[t.name]);
    // Per round: this tree's host path over the baseline's in the same round.
    const ratio = median(mine.map((m, r) => (m.wallMs - m.ortMs + m.answerMs) / (base[r].wallMs - base[r].ortMs + base[r].answerMs)));
    Object.assign(results, { baseline: args.baseline, outputsIdentical: identical, hostPathRatioVsBaseline: +ratio.toFixed(3) });
    console.log({ outputsIdentical: identical, hostPathRatioVsBaseline: +ratio.toFixed(3) });
  }
  console.log(`wrote ${writeResults(`host-path-${args.device}${args.embedded ? '-embedded' : ''}`, results)}`);
} finally {
  inspector.disconnect();
  for (const t of trees) await t.close();
  if (base?.temporary) rmSync(base.dir, { recursive: true, force: true });
}
