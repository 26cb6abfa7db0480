// The text-to-image flow-matching pipeline: encode prompts (cached) -> initial latents ->
// for each step: velocity (CFG as one doubled batch) -> scheduler step -> decode.
// Each stage is a method, so a custom pipeline class can override any of them.
import type { WorkerHooks } from '../hooks.ts';
import type { WorkerEvents } from '../events.ts';
import type { LoadedModel } from '../model/loaded-model.ts';
import type { RolloutData } from '../protocol.ts';
import { f32, tensor, type HostTensor } from '../tensors/tensor.ts';
import type { CachedPrompt, PromptCache } from './prompt-cache.ts';
import { initialNoise } from './noise-source.ts';
import type { BatchContext, BatchPlan, OutputPlan, PromptEmbeddings, StepContext, StepResult } from './types.ts';

export interface PipelineDeps {
  model: LoadedModel;
  hooks: WorkerHooks;
  events: WorkerEvents;
  promptCache: PromptCache;
}

type F32Tensor = HostTensor & { data: Float32Array };

export class TextToImagePipeline {
  static readonly pipelineName: string = 'text-to-image';
  private readonly inputsByBatch = new WeakMap<BatchContext, Record<'hidden_states' | 'encoder_hidden_states' | 'pooled_projections' | 'timestep', F32Tensor>>();

  constructor(protected readonly deps: PipelineDeps, protected readonly options: Record<string, unknown> = {}) {}

  /** Releases what this pipeline holds (re_init_pipeline calls it on the old one, after the swap). */
  dispose(): void | Promise<void> {}

  async run(ctx: BatchContext): Promise<RolloutData> {
    const { hooks, events } = this.deps;
    await this.encodePrompts(ctx);
    let latents = this.prepareLatents(ctx);
    const steps = ctx.params.steps;
    for (let i = 0; i < steps; i++) {
      if (ctx.signal.aborted) throw new Error(`rollout aborted at step ${i}: ${String(ctx.signal.reason ?? 'aborted')}`);
      const velocity = await this.predictVelocity(ctx, latents, i);
      const step: StepContext = { batch: ctx, index: i, sigma: ctx.sigmas[i], sigmaNext: ctx.sigmas[i + 1], latents, velocity };
      hooks.beforeStep.call(step);
      const result = this.step(step);
      hooks.afterStep.call(step, result);
      latents = result.latents;
      events.emit('step', { batchId: ctx.batchId, step: i + 1, steps, batchSize: ctx.samples.length });
    }
    const final = f32([ctx.samples.length, ...ctx.latentShape], latents);
    const images = await this.decode(ctx, final);
    return hooks.afterExecute.promise(this.collect(ctx, final, images), ctx);
  }

  /**
   * Fills ctx.positive and ctx.negative, encoding each distinct prompt once. The negative
   * embeddings are returned even without CFG (cached, nearly free) so that every rollout has
   * the same keys and a trainer can rescore with guidance.
   */
  async encodePrompts(ctx: BatchContext): Promise<void> {
    const positive = ctx.samples.map((s) => s.prompt);
    const negative = ctx.samples.map((s) => s.negativePrompt);
    const found = await this.lookupOrEncode(ctx, [...positive, ...negative]);
    ctx.positive = this.gather(found, positive);
    ctx.negative = this.gather(found, negative);
  }

  /** Initial noise from the noise source, through the prepareLatents hook. */
  prepareLatents(ctx: BatchContext): Float32Array {
    const per = ctx.latentShape[0] * ctx.latentShape[1] * ctx.latentShape[2];
    const latents = new Float32Array(ctx.samples.length * per);
    initialNoise(ctx.noise, ctx.samples.length, latents, per);
    return this.deps.hooks.prepareLatents.call(latents, ctx);
  }

  /** Guided velocity at step i: v = v_u + w (v_c - v_u), both branches in one doubled batch. */
  async predictVelocity(ctx: BatchContext, latents: Float32Array, i: number): Promise<Float32Array> {
    const cfg = usesCfg(ctx);
    const inputs = this.transformerInputs(ctx);
    if (cfg) {
      inputs.hidden_states.data.set(latents);
      inputs.hidden_states.data.set(latents, latents.length);
    } else {
      inputs.hidden_states = f32(inputs.hidden_states.shape, latents);
    }
    inputs.timestep.data.fill(Math.fround(ctx.sigmas[i] * 1000));
    const out = await this.deps.model.components.transformer.run(inputs, ctx.weights.transformer!);
    const v = out.out_hidden_states.data as Float32Array;
    if (!cfg) return v;
    // The guided velocity overwrites the conditional half of the runtime's output (a fresh array
    // this pipeline owns): no new buffer per step, and each element is read before it is written.
    const n = latents.length;
    const w = Math.fround(ctx.params.guidanceScale);
    for (let k = 0; k < n; k++) {
      const vu = v[n + k];
      v[k] = vu + Math.fround(w * Math.fround(v[k] - vu));
    }
    return v.subarray(0, n);
  }

  /**
   * The transformer's inputs for a batch, built once and reused at every step: text and pooled
   * embeddings ([cond; uncond] under CFG) never change, hidden states and timestep are refilled.
   */
  private transformerInputs(ctx: BatchContext): Record<'hidden_states' | 'encoder_hidden_states' | 'pooled_projections' | 'timestep', F32Tensor> {
    let inputs = this.inputsByBatch.get(ctx);
    if (!inputs) {
      const cfg = usesCfg(ctx);
      const pos = ctx.positive!;
      const neg = ctx.negative!;
      const rows = cfg ? 2 * ctx.samples.length : ctx.samples.length;
      const [, L, D] = pos.promptEmbeds.shape;
      const P = pos.pooledPromptEmbeds.shape[1];
      inputs = {
        hidden_states: f32([rows, ...ctx.latentShape]),
        encoder_hidden_states: f32([rows, L, D], cfg ? doubled(pos.promptEmbeds.data, neg.promptEmbeds.data) : pos.promptEmbeds.data),
        pooled_projections: f32([rows, P], cfg ? doubled(pos.pooledPromptEmbeds.data, neg.pooledPromptEmbeds.data) : pos.pooledPromptEmbeds.data),
        timestep: f32([rows]),
      };
      this.inputsByBatch.set(ctx, inputs);
    }
    return inputs;
  }

  /** The scheduler step: the first plugin that answers wins; Euler is core's fallback. */
  step(step: StepContext): StepResult {
    const result = this.deps.hooks.schedulerStep.call(step);
    if (!result) throw new Error('no scheduler answered the step (core Euler fallback missing)');
    return result;
  }

  async decode(ctx: BatchContext, latents: F32Tensor): Promise<HostTensor> {
    const image = await this.deps.hooks.decode.promise(latents, ctx);
    if (!image) throw new Error('no decoder answered (core fallback missing)');
    return image;
  }

  /**
   * The tensors collect() returns for a batch, known before it runs (one sample's shape each).
   * A pipeline that returns other tensors overrides both.
   */
  plannedOutputs(batch: BatchPlan): OutputPlan {
    const { spec, tokenizer } = this.deps.model;
    const { height, width } = batch.params;
    const L = tokenizer.maxLength;
    const embeds = { dtype: 'F32', shape: [L, spec.text.hiddenSize] } as const;
    const pooled = { dtype: 'F32', shape: [spec.text.pooledSize] } as const;
    return {
      tensors: {
        responses: { dtype: 'U8', shape: [3, height, width] },
        latents_clean: { dtype: 'F32', shape: [...batch.latentShape] },
        prompt_embeds: embeds,
        pooled_prompt_embeds: pooled,
        negative_prompt_embeds: embeds,
        negative_pooled_prompt_embeds: pooled,
      },
    };
  }

  /** The batch's rollout: images, final latents, prompt embeddings and what plugins added. */
  collect(ctx: BatchContext, latents: F32Tensor, images: HostTensor): RolloutData {
    const batch: Record<string, HostTensor> = {
      responses: toUint8Image(images),
      latents_clean: latents,
      prompt_embeds: ctx.positive!.promptEmbeds,
      pooled_prompt_embeds: ctx.positive!.pooledPromptEmbeds,
      ...ctx.outputs,
    };
    batch.negative_prompt_embeds = ctx.negative!.promptEmbeds;
    batch.negative_pooled_prompt_embeds = ctx.negative!.pooledPromptEmbeds;
    const nonTensorBatch: Record<string, unknown[]> = {
      prompt: ctx.samples.map((s) => s.prompt),
      negative_prompt: ctx.samples.map((s) => s.negativePrompt),
      seed: ctx.samples.map((s) => s.seed),
      ...ctx.perSample,
    };
    const metaInfo: Record<string, unknown> = {
      sigmas: Array.from(ctx.sigmas),
      steps: ctx.params.steps,
      guidance_scale: ctx.params.guidanceScale,
      height: ctx.params.height,
      width: ctx.params.width,
      pipeline: (this.constructor as typeof TextToImagePipeline).pipelineName,
      model: this.deps.model.source.origin,
      weights_version: this.deps.model.weights.version,
      ...ctx.meta,
    };
    return { batch, nonTensorBatch, metaInfo };
  }

  /** Embeddings of each distinct prompt: cache hits, the rest in one text-encoder run. */
  private async lookupOrEncode(ctx: BatchContext, prompts: readonly string[]): Promise<Map<string, CachedPrompt>> {
    const { model, promptCache } = this.deps;
    const encoderWeights = ctx.weights.text_encoder!;
    const { maxLength } = model.tokenizer;
    // Entries are gathered locally first: inserting fresh ones may evict cached ones.
    const found = new Map<string, CachedPrompt>();
    const missing: string[] = [];
    for (const p of new Set(prompts)) {
      const hit = promptCache.get(p, encoderWeights);
      if (hit) found.set(p, hit);
      else missing.push(p);
    }
    if (missing.length) {
      const ids = new BigInt64Array(missing.length * maxLength);
      missing.forEach((p, k) => ids.set(model.tokenizer.encode(p), k * maxLength));
      const out = await model.components.text_encoder.run({ input_ids: tensor('I64', [missing.length, maxLength], ids) }, encoderWeights);
      const hidden = out.last_hidden_state.data as Float32Array;
      const pooled = out.pooler_output.data as Float32Array;
      const perH = hidden.length / missing.length;
      const perP = pooled.length / missing.length;
      missing.forEach((p, k) => {
        const entry = { embeds: hidden.slice(k * perH, (k + 1) * perH), pooled: pooled.slice(k * perP, (k + 1) * perP) };
        found.set(p, entry);
        promptCache.set(p, encoderWeights, entry);
      });
    }
    return found;
  }

  /** Batch-first [B, L, D] and [B, P] tensors for `prompts`, one row each. */
  private gather(found: Map<string, CachedPrompt>, prompts: readonly string[]): PromptEmbeddings {
    const L = this.deps.model.tokenizer.maxLength;
    const first = found.get(prompts[0])!;
    const D = first.embeds.length / L;
    const P = first.pooled.length;
    const embeds = new Float32Array(prompts.length * L * D);
    const pooled = new Float32Array(prompts.length * P);
    prompts.forEach((p, b) => {
      const e = found.get(p)!;
      embeds.set(e.embeds, b * L * D);
      pooled.set(e.pooled, b * P);
    });
    return { promptEmbeds: f32([prompts.length, L, D], embeds), pooledPromptEmbeds: f32([prompts.length, P], pooled) };
  }
}

export function usesCfg(ctx: BatchContext): boolean {
  return ctx.params.guidanceScale > 1;
}

function doubled(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Images in [-1, 1] (float) to uint8 [0, 255], rounding half up. */
export function toUint8Image(images: HostTensor): HostTensor {
  const src = images.data as Float32Array;
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    // Clamped to [-1, 1] (NaN stays NaN and stores as 0); v + 0.5 is in [0.5, 255.5], where
    // truncation is floor.
    const v = ((x > 1 ? 1 : x < -1 ? -1 : x) + 1) * 127.5;
    out[i] = (v + 0.5) | 0;
  }
  return tensor('U8', images.shape, out);
}
