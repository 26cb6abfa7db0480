// Scoring mode: the log-probs of a stored trajectory, without sampling (the trainer's
// recomputation). The transformer runs on the stored latents through the current pipeline's
// predictVelocity (CFG as in the rollout); the transition of each recorded step is the rollout's,
// so on the rollout's own trajectory and weights the log-probs come back bit for bit.
import { f32, type BatchContext, type HostTensor, type NoiseSource, type PluginApi, type SampleSpec } from '../../core/public.ts';
import { fail, parseScoreArgs } from './score-inputs.ts';
import { transition } from './sde-step.ts';

export type { ScoreArgs } from './score-inputs.ts';

export interface ScoreResult {
  /** [B, W] float32. */
  logProbs: HostTensor;
  /** Step index i of each recorded step (from sigmas[i] to sigmas[i+1]), [B][W]. */
  stepIndices: number[][];
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

export async function computeLogProbs(api: Pick<PluginApi, 'model' | 'weights' | 'pipeline' | 'hooks'>, raw: unknown): Promise<ScoreResult> {
  const { model, hooks } = api;
  const { latents, B, W, latentShape: [C, h, w], sigmas, stepIndices, embeds, pooled, negEmbeds, negPooled, guidanceScale, sdeType, noiseLevel, requestOptions } =
    parseScoreArgs(raw, model.spec);
  const cfg = negEmbeds !== undefined;
  const slots = W + 1;
  const per = C * h * w;
  const [, L, D] = embeds.shape;
  const P = pooled.shape[1];
  const down = model.spec.latent.downscale;
  const logProbs = new Float32Array(B * W);
  const pipeline = api.pipeline.current;
  for (let k = 0; k < W; k++) {
    // Samples at the same step run together; rows are independent of their batch-mates.
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
        weights: api.weights.set,
        positive: { promptEmbeds: f32([rows.length, L, D], gather(embeds.data, rows, L * D)), pooledPromptEmbeds: f32([rows.length, P], gather(pooled.data, rows, P)) },
        negative: cfg ? {
          promptEmbeds: f32([rows.length, L, D], gather(negEmbeds!.data, rows, L * D)),
          pooledPromptEmbeds: f32([rows.length, P], gather(negPooled!.data, rows, P)),
        } : undefined,
        outputs: {},
        meta: {},
        perSample: {},
        signal: new AbortController().signal,
      };
      // As for a rollout: plugins may refuse (asleep) or pick weights (an adapter) for the batch.
      await hooks.beforeExecute.promise(ctx);
      const x = gather(latents.data, rows, per, slots, k);
      const v = await pipeline.predictVelocity(ctx, x, i);
      const tr = transition(sdeType, sigmas[i], sigmas[i + 1], sigmas[1], noiseLevel);
      const mean = new Float32Array(per);
      rows.forEach((b, r) => {
        tr.meanInto(x.subarray(r * per, (r + 1) * per), v.subarray(r * per, (r + 1) * per), mean);
        const next = latents.data.subarray((b * slots + k + 1) * per, (b * slots + k + 2) * per);
        logProbs[b * W + k] = tr.logProb(next, mean);
      });
    }
  }
  return { logProbs: f32([B, W], logProbs), stepIndices };
}
