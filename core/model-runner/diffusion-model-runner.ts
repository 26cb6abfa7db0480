// DiffusionModelRunner: turns requests into batches, runs the pipeline on each, and puts the
// outputs back in request order. The pipeline is swappable at run time (re_init_pipeline).
import type { WorkerConfig } from '../config/schema.ts';
import type { WorkerHooks } from '../hooks.ts';
import type { WorkerEvents } from '../events.ts';
import type { LoadedModel } from '../model/loaded-model.ts';
import type { GenerateRequest, RolloutData } from '../protocol.ts';
import { flowMatchSigmas } from '../scheduler/flow-match.ts';
import { seededNoise } from '../pipeline/noise-source.ts';
import { MIN_THREADED_VALUES, startNoiseHelpers } from '../pipeline/noise-threads.ts';
import { TextToImagePipeline, type PipelineDeps } from '../pipeline/text-to-image.ts';
import type { PromptCache } from '../pipeline/prompt-cache.ts';
import type { BatchContext, SamplingParams } from '../pipeline/types.ts';
import { checkFinite } from '../pipeline/non-finite.ts';
import { planBatches, type PlannedBatch } from './batching.ts';
import type { WorkerServices } from '../services.ts';
import { mergeRollouts, type BatchRollout } from './merge.ts';
import { checkOutputAgreement, checkRolloutSize } from './output-agreement.ts';
import type { RequestBounds } from './request-bounds.ts';
import type { DeclarationQueries } from '../worker-wrapper/declarations.ts';

const requestsOf = (b: PlannedBatch) => b.samples.map((s) => s.requestIndex);

export type PipelineClass = new (deps: PipelineDeps, options: Record<string, unknown>) => TextToImagePipeline;

/** Built by the composition root (core/container.ts). */
export class DiffusionModelRunner {
  private model: LoadedModel | undefined;
  private current: TextToImagePipeline | undefined;
  /** Batches this runner has started: each batch's id, shared by its step and batchDone events. */
  private batches = 0;
  /** The image size the model's graphs fix, from the load-time model checks. */
  private graphBounds: Pick<RequestBounds, 'fixedHeight' | 'fixedWidth'> = {};

  constructor(
    private readonly config: WorkerConfig,
    private readonly hooks: WorkerHooks,
    private readonly events: WorkerEvents,
    readonly promptCache: PromptCache,
    private readonly services: WorkerServices,
    private readonly declarations: DeclarationQueries,
  ) {}

  attach(model: LoadedModel, graphBounds: Pick<RequestBounds, 'fixedHeight' | 'fixedWidth'> = {}): void {
    this.model = model;
    this.graphBounds = graphBounds;
    if (!this.current) this.current = new this.services.pipeline(this.pipelineDeps(), {});
    // Batches this large draw their noise with helper threads: start them now, not on the first rollout.
    const [C, h, w] = this.latentShape(this.defaults());
    if (this.config.maxBatchSize * C * h * w >= MIN_THREADED_VALUES) void startNoiseHelpers();
  }

  get pipeline(): TextToImagePipeline {
    if (!this.current) throw new Error('no model is loaded');
    return this.current;
  }

  /**
   * Swaps the pipeline class; weights and sessions stay. Returns the old pipeline's name. The old
   * pipeline is disposed after the swap, which stands whatever dispose() does: its failure comes
   * back as `disposeError` (and a 'log' warning), not as a rejection of a swap that happened.
   */
  async setPipeline(cls: PipelineClass, options: Record<string, unknown> = {}): Promise<{ previous: string; disposeError?: string }> {
    const next = new cls(this.pipelineDeps(), options);
    const old = this.current;
    this.current = next;
    const previous = (old?.constructor as typeof TextToImagePipeline | undefined)?.pipelineName ?? '';
    try {
      await old?.dispose();
      return { previous };
    } catch (e) {
      const disposeError = `the old pipeline '${previous}' failed to dispose: ${(e as Error)?.message ?? String(e)}`;
      this.events.emit('log', { level: 'warn', message: `pipeline swapped to '${(cls as unknown as typeof TextToImagePipeline).pipelineName}'; ${disposeError}` });
      return { previous, disposeError };
    }
  }

  defaults(): SamplingParams {
    const spec = this.requireModel().spec;
    const d = this.config.defaults;
    return {
      height: d.height ?? spec.image.height,
      width: d.width ?? spec.image.width,
      steps: d.steps ?? spec.defaults.steps,
      guidanceScale: d.guidanceScale ?? spec.defaults.guidanceScale,
    };
  }

  /** What bounds a request: the config's limits and the image size the model's graphs fix. */
  bounds(): RequestBounds {
    const { spec } = this.requireModel();
    return { limits: this.config.limits, downscale: spec.latent.downscale, ...this.graphBounds };
  }

  /** [C, h, w] of one sample's latents at the batch's size. */
  latentShape(params: SamplingParams): [number, number, number] {
    const { latent } = this.requireModel().spec;
    return [latent.channels, params.height / latent.downscale, params.width / latent.downscale];
  }

  /** Builds the context of one batch: sigmas, latent shape, noise, weights. */
  batchContext(params: SamplingParams, samples: BatchContext['samples'], signal: AbortSignal): BatchContext {
    const model = this.requireModel();
    const { spec } = model;
    const ctx: BatchContext = {
      batchId: ++this.batches,
      samples,
      params,
      sigmas: flowMatchSigmas({ steps: params.steps, shift: spec.scheduler.shift, sigmaMin: spec.scheduler.sigmaMin }),
      latentShape: this.latentShape(params),
      noise: seededNoise(samples.map((s) => s.seed)),
      weights: model.weights.set,
      outputs: {},
      // The version this batch runs with: an update committed while it runs must not relabel it.
      meta: { weights_version: model.weights.version },
      perSample: {},
      signal,
    };
    ctx.noise = this.hooks.noiseSource.call(ctx.noise, ctx);
    return ctx;
  }

  /**
   * Validates and plans the whole call before any batch runs: requests within bounds, every
   * option read by someone, and every batch returning the same tensors (one rollout, no gaps).
   */
  plan(requests: readonly GenerateRequest[]): PlannedBatch[] {
    const claimed = new Set(this.declarations.names('requestKey'));
    const plan = planBatches(requests, this.defaults(), this.config.maxBatchSize, claimed, this.services.randomSeed, this.bounds());
    const pipeline = this.pipeline;
    const outputs = plan.map((b) => {
      const batch = { samples: b.samples, params: b.params, latentShape: this.latentShape(b.params) };
      return { tensors: this.hooks.planOutputs.call(pipeline.plannedOutputs(batch), batch).tensors, requests: requestsOf(b) };
    });
    checkOutputAgreement(outputs);
    checkRolloutSize(outputs[0].tensors, plan.reduce((n, b) => n + b.samples.length, 0));
    return plan;
  }

  async execute(requests: readonly GenerateRequest[], signal: AbortSignal): Promise<RolloutData> {
    const started = performance.now();
    const plan = this.plan(requests);
    const contexts = plan.map((b) => this.batchContext(b.params, b.samples, signal));
    // Every batch is checked (asleep, bad plugin options) before any runs: no half-done call.
    for (const ctx of contexts) await this.hooks.beforeExecute.promise(ctx);
    const parts: BatchRollout[] = [];
    for (let i = 0; i < plan.length; i++) {
      const t0 = performance.now();
      const rollout = await this.pipeline.run(contexts[i]);
      checkFinite(rollout, plan[i].samples);
      parts.push({ rollout, outputRows: plan[i].outputRows, requests: requestsOf(plan[i]) });
      this.events.emit('batchDone', { batchId: contexts[i].batchId, batchSize: plan[i].samples.length, seconds: (performance.now() - t0) / 1000 });
    }
    const total = plan.reduce((s, b) => s + b.samples.length, 0);
    const merged = mergeRollouts(parts, total);
    this.events.emit('requestDone', { requests: requests.length, samples: total, seconds: (performance.now() - started) / 1000 });
    return merged;
  }

  private requireModel(): LoadedModel {
    if (!this.model) throw new Error('no model is loaded');
    return this.model;
  }

  private pipelineDeps(): PipelineDeps {
    return { model: this.requireModel(), hooks: this.hooks, events: this.events, promptCache: this.promptCache };
  }
}
