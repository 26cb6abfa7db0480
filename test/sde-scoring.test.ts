// Scoring mode: computeLogProbs on a stored trajectory gives back the rollout's own log-probs
// (on-policy ratio exp(new - old) == 1), and reacts to anything that changes the policy's view.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import type { RolloutData } from '../core/protocol.ts';
import { f32, type HostTensor } from '../core/tensors/tensor.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { createWorker } from '../index.ts';
import { scoreArgsFromRollout, type ScoreArgs, type ScoreResult } from '../plugins/sde-scheduler/index.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights } from './support/weights.ts';

const CAPTURE = { latents: true, timesteps: true, logProbs: true };

function maxRatioError(a: HostTensor, b: HostTensor): number {
  let m = 0;
  for (let k = 0; k < a.data.length; k++) m = Math.max(m, Math.abs(Math.exp((a.data[k] as number) - (b.data[k] as number)) - 1));
  return m;
}

describe('computeLogProbs (scoring mode)', () => {
  let w: WorkerWrapperBase;
  beforeAll(async () => { w = await inlineWorker({ maxBatchSize: 16 }); });
  afterAll(async () => { await w.close(); });
  const generate = async (reqs: unknown[]) => (await w.executeMethod('generate', reqs)) as RolloutData;
  const score = async (args: ScoreArgs) => (await w.executeMethod('computeLogProbs', args)) as ScoreResult;

  const cases: [string, Record<string, unknown>][] = [
    ['sde with CFG, every step', { guidanceScale: 4.5, steps: 6, sde: { type: 'sde' } }],
    ['cps without CFG', { guidanceScale: 1, steps: 5, sde: { type: 'cps', noiseLevel: 0.8 } }],
    ['sde with CFG in per-sample windows', { guidanceScale: 4.5, steps: 8, sde: { type: 'sde', window: { size: 2, range: [0, 6] } } }],
  ];
  for (const [name, opts] of cases) {
    it(`gives ratio 1 on the rollout's own trajectory: ${name}`, async () => {
      const r = await generate([
        { prompt: 'a red circle', numOutputsPerPrompt: 3, seed: 24, capture: CAPTURE, ...opts },
        { prompt: 'a blue square', negativePrompt: 'a cat', seeds: [7, 8], capture: CAPTURE, ...opts },
      ]);
      const s = await score(scoreArgsFromRollout(r));
      expect(s.logProbs.shape).toEqual(r.batch.rollout_log_probs!.shape);
      expect(maxRatioError(s.logProbs, r.batch.rollout_log_probs!)).toBeLessThanOrEqual(1e-6);
      const starts = r.nonTensorBatch.sde_window_start as number[] | undefined;
      if (starts) expect(s.stepIndices.map((idx) => idx[0])).toEqual(starts);
    });
  }

  it('locates window steps from all_timesteps alone', async () => {
    const r = await generate([{ prompt: 'a green star', numOutputsPerPrompt: 4, seed: 24, steps: 8, capture: CAPTURE, sde: { type: 'sde', window: { size: 3, range: [0, 8] } } }]);
    const { windowStarts, ...args } = scoreArgsFromRollout(r);
    const s = await score(args);
    expect(s.stepIndices.map((idx) => idx[0])).toEqual(windowStarts);
    expect(maxRatioError(s.logProbs, r.batch.rollout_log_probs!)).toBeLessThanOrEqual(1e-6);
  });

  it('sees a changed trajectory or guidance: only the affected steps move', async () => {
    const r = await generate([{ prompt: 'a red circle', seeds: [1, 2], steps: 5, capture: CAPTURE, sde: { type: 'sde' } }]);
    const args = scoreArgsFromRollout(r);
    const lat = Float32Array.from(args.allLatents.data as Float32Array);
    const per = lat.length / (2 * 6);
    for (let k = 0; k < per; k++) lat[(0 * 6 + 2) * per + k] += 0.01; // sample 0, latents after step 1
    const moved = await score({ ...args, allLatents: f32(args.allLatents.shape, lat) });
    const old = r.batch.rollout_log_probs!.data as Float32Array;
    const changed = Array.from(moved.logProbs.data as Float32Array, (v, k) => v !== old[k]);
    // Step 1 (as its x_next) and step 2 (as its x) of sample 0; sample 1 untouched.
    expect(changed).toEqual([false, true, true, false, false, false, false, false, false, false]);
    const guided = await score({ ...args, guidanceScale: 2 });
    expect(maxRatioError(guided.logProbs, r.batch.rollout_log_probs!)).toBeGreaterThan(1e-3);
  });

  it('refuses incomplete or inconsistent inputs with the field named, and keeps serving', async () => {
    const r = await generate([{ prompt: 'x', seeds: [1], steps: 4, capture: CAPTURE, sde: { type: 'sde', window: { size: 2, range: [0, 4] } } }]);
    const args = scoreArgsFromRollout(r);
    await expect(w.executeMethod('computeLogProbs', { ...args, negativePromptEmbeds: undefined })).rejects.toThrow('computeLogProbs: negativePromptEmbeds must be a float32 tensor');
    await expect(w.executeMethod('computeLogProbs', { ...args, sdeType: 'ode' })).rejects.toThrow(/computeLogProbs: sdeType: /);
    await expect(w.executeMethod('computeLogProbs', { ...args, windowStarts: undefined, allTimesteps: undefined }))
      .rejects.toThrow('computeLogProbs: allLatents records 2 steps of 4: give windowStarts or allTimesteps to locate them');
    await expect(w.executeMethod('computeLogProbs', { ...args, windowStarts: undefined, allTimesteps: f32([1, 2], Float32Array.from([999, 1])) }))
      .rejects.toThrow('computeLogProbs: allTimesteps[0][0] = 999 is no step of the schedule');
    await expect(w.executeMethod('computeLogProbs', { ...args, windowStarts: [3] })).rejects.toThrow(/allTimesteps\[0\]\[0\] = \d+ disagrees with step 3/);
    await expect(w.executeMethod('computeLogProbs', { ...args, windowStarts: [3], allTimesteps: undefined })).rejects.toThrow('recorded step 1 would be step 4, past the last of 4 steps');
    await expect(w.executeMethod('computeLogProbs', { ...args, promptEmbeds: f32([2, 8, 16]) })).rejects.toThrow('computeLogProbs: promptEmbeds has 2 rows for 1 samples');
    await expect(w.executeMethod('computeLogProbs', { ...args, allLatents: f32([1, 3, 3, 8, 8]) })).rejects.toThrow("allLatents has 3 channels; the model's latents have 4");
    await expect(w.executeMethod('computeLogProbs', { ...args, requestOptions: { sde: {} } })).rejects.toThrow('requestOptions.sde: the scoring steps are given by sdeType and noiseLevel');
    await expect(w.executeMethod('computeLogProbs', { ...args, requestOptions: { seed: 1 } })).rejects.toThrow('requestOptions.seed is not a plugin option a scoring batch can take');
    expect(() => scoreArgsFromRollout({ ...r, metaInfo: { ...r.metaInfo, sde_type: 'ode' } })).toThrow("sde_type 'ode' has no log-probs");
    const s = await score(args);
    expect(maxRatioError(s.logProbs, r.batch.rollout_log_probs!)).toBeLessThanOrEqual(1e-6);
  });

  it('recomputes from a saved rollout file alone: everything needed is in its tensors and meta', async () => {
    const r = await generate([{ prompt: 'a red circle', numOutputsPerPrompt: 3, seed: 24, steps: 8, capture: CAPTURE, sde: { type: 'cps', window: { size: 3, range: [1, 8] } } }]);
    const dir = mkdtempSync(join(tmpdir(), 'omni-rollout-'));
    try {
      const path = join(dir, 'rollout.safetensors');
      await new RolloutBatch(r).save(path);
      const loaded = await RolloutBatch.load(path);
      expect(loaded.metaInfo).toMatchObject({ sde_type: 'cps', noise_level: 0.7, sde_window_size: 3, sde_window_range: [1, 8], guidance_scale: 4.5, weights_version: 0 });
      expect(loaded.metaInfo.model).toMatch(/^dummy:/);
      const s = await score(scoreArgsFromRollout(loaded));
      expect(maxRatioError(s.logProbs, r.batch.rollout_log_probs!)).toBeLessThanOrEqual(1e-6);
      const python = spawnSync('python3', ['-c', `
import json, sys
from safetensors import safe_open
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="np") as f:
    meta = json.loads(f.metadata()["meta_info"]); per = json.loads(f.metadata()["non_tensor_batch"])
print(json.dumps({"all_latents": list(t["all_latents"].shape), "log_probs": t["rollout_log_probs"].tolist(), "responses": str(t["responses"].dtype),
                  "sigmas": len(meta["sigmas"]), "starts": per["sde_window_start"]}))
`, path], { encoding: 'utf8' });
      if (python.status === 0 || !/No module named/.test(python.stderr)) {
        expect(python.stderr).toBe('');
        const seen = JSON.parse(python.stdout);
        expect(seen).toMatchObject({ all_latents: [3, 4, 4, 8, 8], responses: 'uint8', sigmas: 9, starts: r.nonTensorBatch.sde_window_start });
        expect(seen.log_probs.flat()).toEqual(Array.from(r.batch.rollout_log_probs!.data as Float32Array));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is refused while the worker sleeps, like a rollout, and works again after waking', async () => {
    const r = await generate([{ prompt: 'x', seeds: [1], steps: 3, capture: CAPTURE, sde: { type: 'sde' } }]);
    await w.executeMethod('sleep', { level: 1 });
    await expect(w.executeMethod('computeLogProbs', scoreArgsFromRollout(r))).rejects.toThrow(/the worker is asleep/);
    await w.executeMethod('wakeUp');
    const s = await score(scoreArgsFromRollout(r));
    expect(maxRatioError(s.logProbs, r.batch.rollout_log_probs!)).toBeLessThanOrEqual(1e-6);
  });

  it('works across the thread boundary of createWorker', async () => {
    const worker = await createWorker({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1 });
    try {
      const r = await worker.generate([{ prompt: 'a red circle', numOutputsPerPrompt: 2, seed: 3, steps: 4, capture: CAPTURE, sde: { type: 'cps' } }]);
      const s = (await worker.executeMethod('computeLogProbs', scoreArgsFromRollout(r))) as ScoreResult;
      expect(maxRatioError(s.logProbs, r.batch.rollout_log_probs!)).toBeLessThanOrEqual(1e-6);
    } finally {
      await worker.close();
    }
  });
});

describe('computeLogProbs under an adapter (requestOptions)', () => {
  it('scores a LoRA rollout with the same adapter: ratio 1; with the base weights it is not', async () => {
    const w = await inlineWorker({ loadOptions: { ...SMALL_DUMMY, seed: 1 } });
    try {
      const dir = fileURLToPath(new URL('./fixtures/lora/attn-r4/', import.meta.url));
      await w.executeMethod('addLora', {
        name: 'policy',
        config: JSON.parse(readFileSync(`${dir}adapter_config.json`, 'utf8')),
        tensors: new Uint8Array(readFileSync(`${dir}adapter_model.safetensors`)),
      });
      const r = (await w.executeMethod('generate', [{ prompt: 'a red circle', seeds: [1, 2], steps: 4, lora: 'policy', sde: { type: 'sde' }, capture: CAPTURE }])) as RolloutData;
      const args = scoreArgsFromRollout(r);
      const adapted = (await w.executeMethod('computeLogProbs', { ...args, requestOptions: { lora: 'policy' } })) as ScoreResult;
      expect(maxRatioError(adapted.logProbs, r.batch.rollout_log_probs!)).toBeLessThanOrEqual(1e-6);
      const base = (await w.executeMethod('computeLogProbs', args)) as ScoreResult;
      expect(maxRatioError(base.logProbs, r.batch.rollout_log_probs!)).toBeGreaterThan(1e-4);
    } finally {
      await w.close();
    }
  });
});

describe('computeLogProbs as work in flight: one weights version, drained like a rollout, strict arguments', () => {
  let w: WorkerWrapperBase;
  let args: ScoreArgs;
  let expected: HostTensor;
  beforeAll(async () => {
    w = await inlineWorker({ loadOptions: { ...SMALL_DUMMY, seed: 1 } });
    const r = (await w.executeMethod('generate', [{ prompt: 'a red circle', seeds: [1, 2], steps: 5, sde: { type: 'sde' }, capture: CAPTURE }])) as RolloutData;
    args = scoreArgsFromRollout(r);
    expected = r.batch.rollout_log_probs!;
  });
  afterAll(async () => { await w.close(); });
  const score = (a: unknown = args) => w.executeMethod('computeLogProbs', a) as Promise<ScoreResult>;

  /** Holds the current pipeline's first velocity call until release(); counts the calls. */
  function holdFirstStep(before: () => Promise<unknown> = () => new Promise(() => {})) {
    const pipeline = w.worker.runner.pipeline;
    const original = pipeline.predictVelocity.bind(pipeline);
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const held = { calls: 0, release, reached: undefined as unknown as Promise<void> };
    let reached!: () => void;
    held.reached = new Promise<void>((r) => { reached = r; });
    const spy = vi.spyOn(pipeline, 'predictVelocity').mockImplementation(async (ctx, x, i) => {
      if (++held.calls === 1) { reached(); await Promise.race([gate, before()]); }
      return original(ctx, x, i);
    });
    return { held, restore: () => spy.mockRestore() };
  }

  it('runs every step on the weights of its start although loadWeights commits meanwhile, and says which', async () => {
    const { held, restore } = holdFirstStep(() => w.executeMethod('loadWeights', { source: asRecord(dummyWeights(2).transformer) }));
    try {
      const s = await score();
      expect(held.calls).toBe(5);
      expect(s.weightsVersion).toBe(0);
      expect(w.worker.weights.version).toBe(1); // the update landed during the call
      expect(maxRatioError(s.logProbs, expected)).toBeLessThanOrEqual(1e-6); // no step saw version 1
    } finally {
      restore();
    }
    const after = await score();
    expect(after.weightsVersion).toBe(1);
    expect(maxRatioError(after.logProbs, expected)).toBeGreaterThan(1e-4);
    await w.executeMethod('loadWeights', { source: asRecord(dummyWeights(1).transformer) }); // back to the rollout's weights (version 2)
  });

  it('is awaited by sleep (mode wait) and aborted by sleep (mode abort)', async () => {
    const waited = holdFirstStep();
    const scoring = score();
    await waited.held.reached;
    const sleeping = w.executeMethod('sleep', { level: 1 }) as Promise<{ drained: number }>;
    waited.held.release();
    const s = await scoring;
    expect((await sleeping).drained).toBe(1);
    expect(maxRatioError(s.logProbs, expected)).toBeLessThanOrEqual(1e-6);
    waited.restore();
    await w.executeMethod('wakeUp');

    const aborted = holdFirstStep();
    const doomed = score().then(() => 'finished', (e: Error) => e.message);
    await aborted.held.reached;
    const sleeping2 = w.executeMethod('sleep', { level: 1, mode: 'abort' }) as Promise<{ drained: number }>;
    aborted.held.release();
    expect(await doomed).toBe('computeLogProbs: aborted at recorded step 1: aborted by sleep');
    expect((await sleeping2).drained).toBe(1);
    expect(aborted.held.calls).toBe(1);
    aborted.restore();
    await w.executeMethod('wakeUp');
    expect(maxRatioError((await score()).logProbs, expected)).toBeLessThanOrEqual(1e-6);
  });

  it('is awaited by reInitPipeline: every step runs on the pipeline it started with', async () => {
    const { held, restore } = holdFirstStep();
    const order: string[] = [];
    const scoring = score().then((s) => { order.push('scored'); return s; });
    await held.reached;
    const swapped = w.executeMethod('reInitPipeline', { pipelineClass: null }).then(() => { order.push('swapped'); });
    await new Promise((r) => setTimeout(r, 10));
    held.release();
    await Promise.all([scoring, swapped]);
    expect(order).toEqual(['scored', 'swapped']);
    expect(held.calls).toBe(5);
    restore();
  });

  it('refuses unknown arguments and requestOptions keys, naming the likely intended one, before any step runs', async () => {
    const { held, restore } = holdFirstStep(async () => undefined);
    try {
      await expect(score({ ...args, noiseLevle: 0.1 })).rejects.toThrow(/^computeLogProbs: unknown argument 'noiseLevle' \(did you mean 'noiseLevel'\?\); it takes allLatents, /);
      await expect(score({ ...args, guidance_scale: 1 })).rejects.toThrow(/unknown argument 'guidance_scale' \(did you mean 'guidanceScale'\?\)/);
      await expect(score({ ...args, temperature: 1 })).rejects.toThrow(/unknown argument 'temperature'; it takes/);
      await expect(score({ ...args, noiseLevel: 1e6 })).rejects.toThrow(/noiseLevel.*must be at most 1/);
      await expect(score({ ...args, requestOptions: { lroa: 'policy' } })).rejects.toThrow("computeLogProbs: requestOptions.lroa is no plugin's request option (did you mean 'lora'?) (this worker's: ");
      await expect(score({ ...args, requestOptions: { adapter: 'policy' } })).rejects.toThrow(/requestOptions\.adapter is no plugin's request option \(this worker's: .*lora/);
      expect(held.calls).toBe(0);
    } finally {
      restore();
    }
  });
});
