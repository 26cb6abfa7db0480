// Session residency (weights as session initializers, a session per weights map; the default on
// CUDA) against inputs residency (weights fed every run; the default on the CPU): the weight
// lifecycle runs the same way in both, and on the small dummy model the outputs agree bit for bit.
// (On the embedded model they agree within float tolerance: ONNX Runtime's CPU kernels prepack
// initializers, which changes summation order; test/parity.test.ts bounds the inputs path.)
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RolloutData } from '../core/protocol.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import type { ComponentName } from '../core/model/manifest.ts';
import { definePlugin } from '../core/plugin.ts';
import { tapOptions } from '../core/hooks.ts';
import { parseSafetensors } from '../core/tensors/safetensors.ts';
import { scoreArgsFromRollout, type ScoreResult } from '../plugins/sde-scheduler/index.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectDifferentRollout, expectSameRollout, REQUESTS, sameBytes } from './support/weights.ts';

const A = { ...SMALL_DUMMY, seed: 1 };
const COMPONENTS = ['text_encoder', 'transformer', 'decoder'] as const;
const MODES = ['inputs', 'session'] as const;
type Mode = (typeof MODES)[number];
const [wB, wC] = [dummyWeights(2), dummyWeights(3)];
const CAPTURE = { latents: true, timesteps: true, logProbs: true };

const gen = (w: WorkerWrapperBase, reqs: unknown[] = REQUESTS) => w.executeMethod('generate', reqs) as Promise<RolloutData>;
const load = (w: WorkerWrapperBase, component: ComponentName, seedWeights: typeof wB, bucket = false) =>
  w.executeMethod('loadWeights', { component, source: asRecord(seedWeights[component]), bucket });
const sessions = (w: WorkerWrapperBase, c: ComponentName) => w.worker.model.components[c]!.sessionCount;
/** Session residency: once nothing is in flight, each component holds its serving session and `spare` more at most. */
const settledTo = (w: WorkerWrapperBase, counts: Partial<Record<ComponentName, number>>) =>
  vi.waitFor(() => { for (const [c, n] of Object.entries(counts)) expect(sessions(w, c as ComponentName), c).toBe(n); });

/** Holds every batch before its decode until `release()`: a batch in flight, deterministically. */
function decodeGate() {
  let release!: () => void;
  let reached!: () => void;
  const released = new Promise<void>((r) => { release = r; });
  const atDecode = new Promise<void>((r) => { reached = r; });
  const plugin = definePlugin({
    name: 'decode-gate',
    apply(api) {
      api.hooks.decode.tapPromise(tapOptions(api.name, 'pre'), async () => { reached(); await released; return undefined; });
    },
  });
  return { plugin, release, atDecode };
}

async function adapter(name: string) {
  const dir = fileURLToPath(new URL(`./fixtures/lora/${name}/`, import.meta.url));
  const file = parseSafetensors(await readFile(join(dir, 'adapter_model.safetensors')));
  return { config: JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')), tensors: Object.fromEntries(file.names.map((n) => [n, file.get(n)])) };
}

describe('weight residency: session vs inputs, same lifecycle, same outputs (bit for bit, small dummy model)', () => {
  const open: WorkerWrapperBase[] = [];
  afterEach(async () => { await Promise.all(open.splice(0).map((w) => w.close())); });
  async function worker(mode: Mode, extra = {}, config = {}): Promise<WorkerWrapperBase> {
    const w = await inlineWorker({ loadOptions: A, weightResidency: mode, ...config }, extra);
    open.push(w);
    return w;
  }
  /** Runs `scenario` on a worker of each residency and returns both results. */
  async function both<T>(scenario: (w: WorkerWrapperBase, mode: Mode) => Promise<T>, extra = {}, config = {}): Promise<Record<Mode, T>> {
    const out = {} as Record<Mode, T>;
    for (const mode of MODES) out[mode] = await scenario(await worker(mode, extra, config), mode);
    return out;
  }
  const sameRollouts = (a: RolloutData[], b: RolloutData[]) => { expect(a.length).toBe(b.length); a.forEach((r, i) => expectSameRollout(r, b[i])); };

  it("'auto' is inputs on the CPU; 'session' holds one session per component, built at load", async () => {
    expect((await worker('inputs', {}, { weightResidency: 'auto' })).worker.model.components.transformer.residency).toBe('inputs');
    const w = await worker('session');
    for (const c of COMPONENTS) expect(w.worker.model.components[c]!.residency).toBe('session');
    await settledTo(w, { text_encoder: 1, transformer: 1, decoder: 1 });
  });

  it('loadWeights in buckets, abort, finish: the new version is served and the old sessions are released', async () => {
    const r = await both(async (w, mode) => {
      const r0 = await gen(w);
      for (const c of COMPONENTS) await load(w, c, wB, true);
      expect(await w.executeMethod('abortWeightUpdate')).toMatchObject({ dropped: expect.any(Number), weightsVersion: 0 });
      const aborted = await gen(w);
      for (const c of COMPONENTS) await load(w, c, wB, true);
      expect(await w.executeMethod('finishWeightUpdate')).toMatchObject({ weightsVersion: 1, committed: { text_encoder: expect.any(Number), transformer: 16, decoder: expect.any(Number) } });
      if (mode === 'session') await settledTo(w, { text_encoder: 1, transformer: 1, decoder: 1 });
      const r1 = await gen(w);
      expect(r1.metaInfo.weights_version).toBe(1);
      expectSameRollout(aborted, r0);
      expectDifferentRollout(r1, r0);
      return [r0, r1];
    });
    sameRollouts(r.inputs, r.session);
  });

  it('a batch in flight finishes on the weights it started with, though its sessions were replaced meanwhile', async () => {
    const reqs = [{ prompt: 'a red circle', seed: 5, steps: 4 }];
    const r = await both(async (w, mode) => {
      const expected = await gen(w, reqs);
      const gate = decodeGate();
      const held = await worker(mode, { 'decode-gate': gate.plugin });
      const running = gen(held, reqs);
      await gate.atDecode; // the transformer's steps are done; the decoder has yet to run
      await load(held, 'decoder', wB);
      await load(held, 'transformer', wB);
      if (mode === 'session') expect(sessions(held, 'decoder')).toBe(2); // the batch's and the new one
      gate.release();
      const inFlight = await running;
      expect(inFlight.metaInfo.weights_version).toBe(0);
      expectSameRollout(inFlight, expected);
      if (mode === 'session') await settledTo(held, { decoder: 1, transformer: 1 });
      const after = await gen(held, reqs);
      expect(after.metaInfo.weights_version).toBe(2);
      expectDifferentRollout(after, expected);
      return [inFlight, after];
    });
    sameRollouts(r.inputs, r.session);
  });

  it('a failed session build fails the update with nothing applied; the buckets stay staged', async () => {
    await both(async (w) => {
      const before = await gen(w);
      for (const c of COMPONENTS) await load(w, c, wB, true);
      // Stands for a build that fails (out of device memory, say): the store's preparer throws.
      const off = w.worker.weights.onPrepare(async () => { throw new Error('out of device memory'); });
      await expect(w.executeMethod('finishWeightUpdate')).rejects.toThrow('out of device memory');
      expect(w.worker.weights.version).toBe(0);
      expectSameRollout(await gen(w), before);
      off();
      expect(await w.executeMethod('finishWeightUpdate')).toMatchObject({ weightsVersion: 1, tensors: expect.any(Number) });
      expectDifferentRollout(await gen(w), before);
    });
  });

  it('concurrent loadWeights calls each apply: commits build on each other, none is lost', async () => {
    await both(async (w) => {
      const [x, y] = ['proj_out.weight', 'proj_in.weight'];
      expect(wB.transformer.has(x) && wB.transformer.has(y)).toBe(true);
      await Promise.all([x, y].map((n) => w.executeMethod('loadWeights', { source: { [n]: wB.transformer.get(n) } })));
      const now = w.worker.weights.get('transformer')!;
      expect(w.worker.weights.version).toBe(2);
      for (const n of [x, y]) expect(sameBytes(now.get(n)!, wB.transformer.get(n)!), n).toBe(true);
    });
  });

  it('LoRA per request: the merged adapter is a session built at addLora, kept within spareSessions', async () => {
    const attn = await adapter('attn-r4');
    const ff = await adapter('ff-rslora-bf16');
    const req = { prompt: 'a red circle', seeds: [4, 5] };
    const r = await both(async (w, mode) => {
      await w.executeMethod('addLora', { name: 'attn', config: attn.config, tensors: attn.tensors });
      if (mode === 'session') expect(sessions(w, 'transformer')).toBe(2);
      const out = [
        await gen(w, [{ ...req, lora: 'attn' }]),
        await gen(w, [req]),
        await gen(w, [{ ...req, lora: { name: 'attn', scale: 0.5 } }]), // merged on first use
      ];
      await w.executeMethod('addLora', { name: 'ff', config: ff.config, tensors: ff.tensors });
      out.push(await gen(w, [{ ...req, lora: 'ff' }]), await gen(w, [{ ...req, lora: 'attn' }]));
      if (mode === 'session') await settledTo(w, { transformer: 2 }); // serving + 1 spare
      expectDifferentRollout(out[0], out[1]);
      expectDifferentRollout(out[2], out[0]);
      expectSameRollout(out[4], out[0]);
      // A transformer update makes merged sessions stale: only the new serving one is left.
      await load(w, 'transformer', wB);
      if (mode === 'session') await settledTo(w, { transformer: 1 });
      out.push(await gen(w, [{ ...req, lora: 'attn' }]));
      return out;
    });
    sameRollouts(r.inputs, r.session);
  });

  it("computeLogProbs on the rollout's own trajectory and weights gives ratio 1, after an update too", async () => {
    const reqs = [{ prompt: 'a red circle', numOutputsPerPrompt: 2, seed: 24, steps: 5, capture: CAPTURE, sde: { type: 'sde' } }];
    const r = await both(async (w) => {
      const out: Float32Array[] = [];
      for (const update of [false, true]) {
        if (update) await load(w, 'transformer', wB);
        const rollout = await gen(w, reqs);
        const s = (await w.executeMethod('computeLogProbs', scoreArgsFromRollout(rollout))) as ScoreResult;
        expect(s.weightsVersion).toBe(rollout.metaInfo.weights_version);
        expect(sameBytes(s.logProbs, rollout.batch.rollout_log_probs!)).toBe(true);
        out.push(s.logProbs.data as Float32Array);
      }
      return out;
    });
    r.inputs.forEach((lp, i) => expect(r.session[i]).toEqual(lp));
  });

  it('sleep level 1 releases every session and wake rebuilds them from the host weights', async () => {
    const r = await both(async (w, mode) => {
      await load(w, 'transformer', wB); // a trainer's weights, not the checkpoint's
      const before = await gen(w);
      expect(await w.executeMethod('sleep', { level: 1 })).toMatchObject({ released: ['sessions'] });
      for (const c of COMPONENTS) expect(sessions(w, c)).toBe(0);
      expect(await w.executeMethod('wakeUp')).toMatchObject({ awake: true, weightsVersion: 1 });
      if (mode === 'session') for (const c of COMPONENTS) expect(sessions(w, c)).toBe(1);
      const after = await gen(w);
      expectSameRollout(after, before);
      return [after];
    });
    sameRollouts(r.inputs, r.session);
  });

  it('sleep level 2 drops the host weights too; wake reloads the checkpoint, or the trainer sends them', async () => {
    const r = await both(async (w, mode) => {
      const before = await gen(w);
      expect(await w.executeMethod('sleep', { level: 2 })).toMatchObject({ released: ['sessions', 'weights'] });
      expect(w.worker.weights.set).toEqual({});
      expect(await w.executeMethod('wakeUp')).toMatchObject({ awake: true, fromCheckpoint: [...COMPONENTS] });
      expectSameRollout(await gen(w), before);
      await w.executeMethod('sleep', { level: 2 });
      await w.executeMethod('wakeUp', ['sessions']);
      // Open, but with no weights a resident session has nothing to hold: built at the update.
      for (const c of COMPONENTS) expect(sessions(w, c)).toBe(mode === 'session' ? 0 : 1);
      for (const c of COMPONENTS) await load(w, c, wC, true);
      await w.executeMethod('finishWeightUpdate');
      for (const c of COMPONENTS) expect(sessions(w, c)).toBe(1);
      const sent = await gen(w);
      expectDifferentRollout(sent, before);
      return [before, sent];
    });
    sameRollouts(r.inputs, r.session);
  });

  it('a text-encoder update clears the prompt cache: new embeddings, not cached ones', async () => {
    const r = await both(async (w) => {
      const before = await gen(w);
      await load(w, 'text_encoder', wB);
      const after = await gen(w);
      expect(sameBytes(after.batch.prompt_embeds!, before.batch.prompt_embeds!)).toBe(false);
      return [before, after];
    });
    sameRollouts(r.inputs, r.session);
  });
});
