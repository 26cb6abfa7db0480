// A custom pipeline, as a user would write one: the built-in text-to-image pipeline, plus every
// step's guided velocity returned as an extra rollout tensor (for distillation targets, or to
// check a trainer's own velocity computation). Load it from a config:
//   plugins:
//     - name: custom-pipeline
//       options: { roots: [./custom-pipeline], pipeline: { module: ./custom-pipeline/velocity-capture.ts, export: VelocityCapturePipeline } }
// or swap it in at run time: executeMethod('reInitPipeline', { pipelineClass: 'custom-pipeline/velocity-capture.ts#VelocityCapturePipeline', options: { key: 'v' } }).
import { f32, TextToImagePipeline, type BatchContext, type BatchPlan, type OutputPlan, type PipelineDeps, type RolloutData } from '../../index.ts';

export interface VelocityCaptureOptions {
  /** Name of the output tensor; 'velocities' by default. */
  key?: string;
}

export class VelocityCapturePipeline extends TextToImagePipeline {
  static override readonly pipelineName: string = 'velocity-capture';
  private readonly key: string;
  /** The batch's output buffer [B, N, C, h, w]; a WeakMap so that nothing outlives its batch. */
  private readonly buffers = new WeakMap<BatchContext, Float32Array>();
  disposed = false;

  constructor(deps: PipelineDeps, options: Record<string, unknown> = {}) {
    super(deps, options);
    const { key = 'velocities' } = options as VelocityCaptureOptions;
    if (typeof key !== 'string' || !/^[a-z_][a-z0-9_]*$/.test(key)) throw new Error(`velocity-capture: options.key must be a snake_case name, got ${JSON.stringify(key)}`);
    this.key = key;
  }

  /** Declared before any batch runs: a call whose batches differ in steps is refused up front. */
  override plannedOutputs(batch: BatchPlan): OutputPlan {
    const planned = super.plannedOutputs(batch);
    return { ...planned, tensors: { ...planned.tensors, [this.key]: { dtype: 'F32', shape: [batch.params.steps, ...batch.latentShape] } } };
  }

  override async run(ctx: BatchContext): Promise<RolloutData> {
    const out = f32([ctx.samples.length, ctx.params.steps, ...ctx.latentShape]);
    ctx.outputs[this.key] = out; // collect() puts ctx.outputs into the rollout as they are
    this.buffers.set(ctx, out.data);
    return super.run(ctx);
  }

  override async predictVelocity(ctx: BatchContext, latents: Float32Array, i: number): Promise<Float32Array> {
    const v = await super.predictVelocity(ctx, latents, i);
    const out = this.buffers.get(ctx); // absent when called outside run() (scoring mode)
    if (out) {
      const per = v.length / ctx.samples.length;
      const steps = ctx.params.steps;
      for (let b = 0; b < ctx.samples.length; b++) out.set(v.subarray(b * per, (b + 1) * per), (b * steps + i) * per);
    }
    return v;
  }

  override dispose(): void {
    this.disposed = true;
  }
}
