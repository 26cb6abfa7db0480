// Scoring mode: the log-probs of a stored trajectory, without sampling (the trainer's
// recomputation). The transformer runs on the stored latents through the current pipeline's
// predictVelocity (CFG as in the rollout); the transition of each recorded step is the rollout's,
// so on the rollout's own trajectory and weights the log-probs come back bit for bit.
// One call is work in flight like a rollout (sleep, reInitPipeline and close wait for it or abort
// it) and runs every step on one weights snapshot: the version it reports.
import { f32, type BatchContext, type HostTensor, type NoiseSource, type PluginApi, type SampleSpec } from '../../core/public.ts';
import { fail, parseScoreArgs, type RequestKeys } from './score-inputs.ts';
import { transition } from './sde-step.ts';

export type { ScoreArgs } from './score-inputs.ts';

export interface ScoreResult {
  /** [B, W] float32. */
  logProbs: HostTensor;
  /** Step index i of each recorded step (from sigmas[i] to sigmas[i+1]), [B][W]. */
  stepIndices: number[][];
  /** The weights every step ran with (a rollout's meta_info.weights_version). */
  weightsVersion: number;
}

/** What scoring needs of the worker. */
export type ScoringApi = Pick<PluginApi, 'hooks' | 'model' | 'weights' | 'pipeline' | 'declared' | 'runInFlight'>;

function requestKeys(declared: ScoringApi['declared']): RequestKeys {
  const all = declared.names('requestKey');
  const isCore = (k: string) => declared.ownerOf('requestKey', k) === 'core';
  return { core: all.filter(isCore), plugins: all.filter((k) => !isCore(k)) };
}

/** Rows `rows` of a [B, ...] tensor, or of slot k of a [B, S, ...] tensor, as one contiguous block. */
function gather(src: Float32Array, rows: readonly number[], rowSize: number, slots = 1, slot = 0): Float32Array {
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((b, r) => out.set(src.subarray((b * slots + slot) * rowSize, (b * slots + slot + 1) * rowSize), r * rowSize));
  return out;
}

const NO_NOISE: NoiseSource = {
  name: 'scoring',
  initial: () => fail('scoring draws no noise'),
  step: () => fail('scoring draws no noise'),
};

export async function computeLogProbs(api: ScoringApi, raw: unknown): Promise<ScoreResult> {
  const { hooks, model } = api;
  const { latents, B, W, latentShape: [C, h, w], sigmas, stepIndices, embeds, pooled, negEmbeds, negPooled, guidanceScale, sdeType, noiseLevel, requestOptions } =
    parseScoreArgs(raw, model.spec, requestKeys(api.declared));
  const cfg = negEmbeds !== undefined;
  const slots = W + 1;
  const per = C * h * w;
  const [, L, D] = embeds.shape;
  const P = pooled.shape[1];
  const down = model.spec.latent.downscale;
  return api.runInFlight(async (signal) => {
    // One snapshot for the whole call: a weight update or pipeline swap meanwhile changes no step.
    const weights = api.weights.set;
    const weightsVersion = api.weights.version;
    const pipeline = api.pipeline.current;
    // Samples at the same step run together; rows are independent of their batch-mates.
    const batches: { k: number; i: number; rows: number[]; ctx: BatchContext }[] = [];
    for (let k = 0; k < W; k++) {
      const groups = new Map<number, number[]>();
      stepIndices.forEach((idx, b) => groups.set(idx[k], [...(groups.get(idx[k]) ?? []), b]));
      for (const [i, rows] of groups) {
        const samples: SampleSpec[] = rows.map((b) => ({ requestIndex: 0, outputIndex: b, prompt: '', negativePrompt: '', seed: 0, request: { prompt: '', ...requestOptions } }));
        const ctx: BatchContext = {
          batchId: 0, // not a rollout batch: it emits no step or batchDone events
          samples,
          params: { height: h * down, width: w * down, steps: sigmas.length - 1, guidanceScale },
          sigmas,
          latentShape: [C, h, w],
          noise: NO_NOISE,
          weights,
          outputs: {},
          meta: { weights_version: weightsVersion },
          perSample: {},
          signal,
        };
        batches.push({ k, i, rows, ctx });
      }
    }
    // As for a rollout, every batch is checked before any runs: plugins may refuse (asleep) or
    // pick weights (an adapter merged into the snapshot's transformer).
    for (const { ctx } of batches) await hooks.beforeExecute.promise(ctx);
    const logProbs = new Float32Array(B * W);
    for (const { k, i, rows, ctx } of batches) {
      if (signal.aborted) fail(`aborted at recorded step ${k}: ${(signal.reason as Error)?.message ?? signal.reason}`);
      // Embeddings gathered per batch, just before it runs: W copies of them at once would not fit.
      ctx.positive = { promptEmbeds: f32([rows.length, L, D], gather(embeds.data, rows, L * D)), pooledPromptEmbeds: f32([rows.length, P], gather(pooled.data, rows, P)) };
      ctx.negative = cfg ? {
        promptEmbeds: f32([rows.length, L, D], gather(negEmbeds!.data, rows, L * D)),
        pooledPromptEmbeds: f32([rows.length, P], gather(negPooled!.data, rows, P)),
      } : undefined;
      const x = gather(latents.data, rows, per, slots, k);
      const v = await pipeline.predictVelocity(ctx, x, i);
      ctx.positive = ctx.negative = undefined;
      const tr = transition(sdeType, sigmas[i], sigmas[i + 1], sigmas[1], noiseLevel);
      const mean = new Float32Array(per);
      rows.forEach((b, r) => {
        tr.meanInto(x.subarray(r * per, (r + 1) * per), v.subarray(r * per, (r + 1) * per), mean);
        const next = latents.data.subarray((b * slots + k + 1) * per, (b * slots + k + 2) * per);
        logProbs[b * W + k] = tr.logProb(next, mean);
      });
    }
    return { logProbs: f32([B, W], logProbs), stepIndices, weightsVersion };
  });
}
