// Half precision on the device (issue 10 item 2), run by hand on the GPU machine (CI has no GPU;
// test/half-precision.test.ts checks the same on the CPU). For float16 and bfloat16 it writes a
// dummy model folder (`omni-worker dummy-model --dtype`) and a float32 one of the same seed, and
// checks with `device` (cuda by default): weights kept half on the host; generate (drift against
// the float32 model reported); SDE with log-probs and computeLogProbs on the rollout's own
// trajectory (ratio 1); loadWeights from float32 bytes (converted exactly); a LoRA adapter per
// request and scored under it; sleep 1 and 2 with wake (same output); step time per precision.
// Prints a JSON summary and exits 1 when a check fails.
//   node bin/run-ts.js bench/gpu-check-half.ts --device cuda
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dummyModelCommand } from '../cli/dummy-model.ts';
import { prepareDeviceEnvironment } from '../core/model/execution-provider.ts';
import { PRECISION_DTYPE, type Precision } from '../core/model/precision.ts';
import type { RolloutData } from '../core/protocol.ts';
import { fromFloat32, type FloatDType } from '../core/tensors/dtype-convert.ts';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { buildDummyModel } from '../plugins/dummy-loader/index.ts';
import { dummyArchSchema } from '../plugins/dummy-loader/architecture.ts';
import { scoreArgsFromRollout, type ScoreResult } from '../plugins/sde-scheduler/index.ts';
import { benchWorker, median, round } from './weights-common.ts';
import { deviceMemoryMiB, writeResults } from './support.ts';
import { queryAdapter } from './lora-adapter.ts';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    hidden: { type: 'string', default: '1024' },
    layers: { type: 'string', default: '12' },
    heads: { type: 'string', default: '16' },
    image: { type: 'string', default: '64' },
    images: { type: 'string', default: '8' },
    reps: { type: 'string', default: '3' },
    precisions: { type: 'string', default: 'float16,bfloat16' },
  },
});
const device = args.device as 'cpu' | 'cuda';
prepareDeviceEnvironment(device, false);
const side = Number(args.image);
const ARCH = { hidden: Number(args.hidden), layers: Number(args.layers), heads: Number(args.heads), height: side, width: side, seed: 3 };
const CLI_DTYPE = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' } as const;
const PLUGINS = ['weight-sync', 'sleep-mode', 'lora', 'sde-scheduler', 'latent-capture'];
const CAPTURE = { latents: true, timesteps: true, logProbs: true };

const log = (line: string) => process.stderr.write(`${line}\n`);
const gen = (w: WorkerWrapperBase, reqs: unknown[]) => w.executeMethod('generate', reqs) as Promise<RolloutData>;
const requests = (n: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => ({ prompt: `a red circle ${i}`, seed: 100 + i, guidanceScale: 4.5, steps: 4, ...extra }));

function diff(a: HostTensor, b: HostTensor): { max: number; mean: number } {
  let max = 0, sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(Number(a.data[i]) - Number(b.data[i]));
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.data.length };
}
const same = (a: RolloutData, b: RolloutData) => diff(a.batch.latents_clean!, b.batch.latents_clean!).max === 0;

async function stepSeconds(w: WorkerWrapperBase): Promise<number> {
  const n = Number(args.images);
  await gen(w, requests(n, { steps: 2 })); // warm-up
  const per: number[] = [];
  for (let i = 0; i < Number(args.reps); i++) {
    let t0 = performance.now();
    await gen(w, requests(n, { steps: 2 }));
    const lo = performance.now() - t0;
    t0 = performance.now();
    await gen(w, requests(n, { steps: 10 }));
    per.push((performance.now() - t0 - lo) / 8 / 1000);
  }
  return round(median(per));
}

async function checkPrecision(precision: Precision, dir: string, reference: RolloutData) {
  const failures: string[] = [];
  const figures: Record<string, unknown> = {};
  const check = (ok: boolean, what: string) => {
    log(`${ok ? 'ok  ' : 'FAIL'} ${precision}: ${what}`);
    if (!ok) failures.push(what);
  };
  const dtype = PRECISION_DTYPE[precision] as FloatDType;
  let w: WorkerWrapperBase | undefined;
  try {
    // Inside the try: a session that cannot be built (a kernel missing for this dtype) is a failed check, reported.
    w = await benchWorker({ device, reps: 1, layers: 1 }, { name: precision, config: { model: dir, dtype: precision } }, PLUGINS);
    const held = [...Object.values(w.worker.weights.set)].flatMap((m) => [...m!.values()].map((t) => t.dtype));
    check(held.every((d) => d === dtype), `weights held as ${dtype} on the host (${new Set(held).size} dtype(s))`);
    if (device === 'cuda') check(w.worker.model.components.transformer.residency === 'session', 'session residency on cuda');
    const reqs = requests(Number(args.images));
    const r0 = await gen(w, reqs);
    figures.driftVsFloat32 = diff(r0.batch.latents_clean!, reference.batch.latents_clean!);
    check([...r0.batch.latents_clean!.data].every(Number.isFinite), 'generate: finite latents');

    // SDE with log-probs, then scored on its own trajectory: ratio 1.
    const sde = await gen(w, requests(2, { steps: 6, sde: { type: 'sde' }, capture: CAPTURE }));
    const s = (await w.executeMethod('computeLogProbs', scoreArgsFromRollout(sde))) as ScoreResult;
    const lp = diff(s.logProbs, sde.batch.rollout_log_probs!);
    figures.logProbMaxAbsDiff = lp.max;
    check(lp.max <= 1e-6, `computeLogProbs on the rollout's own trajectory: max |new - old| ${lp.max}`);

    // loadWeights from float32 bytes: converted to the model's dtype exactly, and served.
    const original = Object.fromEntries(w.worker.weights.get('transformer')!);
    const next = buildDummyModel(dummyArchSchema.parse({ ...ARCH, seed: 4 })).components.transformer.weights;
    await w.executeMethod('loadWeights', { source: serializeSafetensors(next) });
    const exact = [...next].every(([n, t]) => {
      const h = w!.worker.weights.get('transformer')!.get(n)!;
      const want = fromFloat32(t.data as Float32Array, dtype);
      return h.dtype === dtype && h.data.length === want.length && h.data.every((v, i) => v === want[i]);
    });
    check(exact, `loadWeights from F32 bytes: every tensor converted to ${dtype} exactly`);
    const r1 = await gen(w, reqs);
    check(!same(r1, r0), 'loadWeights: the new weights are served');
    await w.executeMethod('loadWeights', { source: original });
    check(same(await gen(w, reqs), r0), 'loadWeights of the original weights: the original output, bit for bit');

    // LoRA per request, switched, and scored under the same adapter.
    await w.executeMethod('addLora', { name: 'a', ...queryAdapter(w.worker.weights.get('transformer')!, 11) });
    const one = requests(2, { steps: 6, sde: { type: 'sde' }, capture: CAPTURE });
    const plain = await gen(w, one);
    const withLora = await gen(w, one.map((r) => ({ ...r, lora: 'a' })));
    check(!same(withLora, plain), 'LoRA per request changes the output');
    check(same(await gen(w, one.map((r) => ({ ...r, lora: 'a' }))), withLora), 'LoRA again: the same output, bit for bit');
    const sl = (await w.executeMethod('computeLogProbs', { ...scoreArgsFromRollout(withLora), requestOptions: { lora: 'a' } })) as ScoreResult;
    figures.loraLogProbMaxAbsDiff = diff(sl.logProbs, withLora.batch.rollout_log_probs!).max;
    check((figures.loraLogProbMaxAbsDiff as number) <= 1e-6, `computeLogProbs under the LoRA: max |new - old| ${figures.loraLogProbMaxAbsDiff}`);
    await w.executeMethod('removeLora', 'a');

    // Sleep 1 and 2, wake: the same output.
    figures.deviceMiBAwake = deviceMemoryMiB(device);
    await w.executeMethod('sleep', { level: 1 });
    figures.deviceMiBLevel1 = deviceMemoryMiB(device);
    await w.executeMethod('wakeUp');
    check(same(await gen(w, reqs), r0), 'sleep 1 + wake: the same output, bit for bit');
    const maps = { ...w.worker.weights.set };
    await w.executeMethod('sleep', { level: 2 });
    figures.deviceMiBLevel2 = deviceMemoryMiB(device);
    await w.executeMethod('wakeUp', ['sessions']);
    for (const [component, map] of Object.entries(maps)) await w.executeMethod('loadWeights', { component, source: Object.fromEntries(map!), bucket: true });
    await w.executeMethod('finishWeightUpdate');
    check(same(await gen(w, reqs), r0), 'sleep 2 + wake + loadWeights: the same output, bit for bit');

    figures.stepSeconds = await stepSeconds(w);
  } catch (e) {
    check(false, `threw: ${(e as Error).stack ?? e}`);
  } finally {
    await w?.close();
  }
  return { figures, failures };
}

const root = mkdtempSync(join(tmpdir(), 'omni-half-check-'));
const summary: Record<string, unknown> = { device, arch: ARCH, images: Number(args.images), cfg: true };
let failed = 0;
try {
  const folder = async (p: Precision) => {
    const dir = join(root, p);
    await dummyModelCommand({ out: dir, dtype: CLI_DTYPE[p], ...ARCH });
    return dir;
  };
  const ref = await benchWorker({ device, reps: 1, layers: 1 }, { name: 'float32', config: { model: await folder('float32') } }, PLUGINS);
  const reference = await gen(ref, requests(Number(args.images)));
  summary.float32 = { stepSeconds: await stepSeconds(ref) };
  await ref.close();
  for (const p of args.precisions!.split(',') as Precision[]) {
    const result = await checkPrecision(p, await folder(p), reference);
    summary[p] = result;
    failed += result.failures.length;
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
summary.failed = failed;
log(`results in ${writeResults(`gpu-check-half-${device}`, summary)}`);
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (failed) process.exitCode = 1;
