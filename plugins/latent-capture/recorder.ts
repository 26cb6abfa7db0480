// Records a batch's trajectory into preallocated output tensors, one write per recorded step and
// sample: latents [B, W+1, C, h, w], timesteps [B, W], log-probs [B, W]. Which steps are recorded
// comes from ctx.recorded (every step without it).
import { f32, type BatchContext, type RecordedSteps, type HostTensor, type StepContext, type StepResult } from '../../core/public.ts';
import type { CaptureOptions } from './options.ts';

type F32 = HostTensor & { data: Float32Array };

export class TrajectoryRecorder {
  private readonly latents?: F32;
  private readonly timesteps?: F32;
  private readonly logProbs?: F32;
  private readonly W: number;
  private readonly per: number;

  constructor(ctx: BatchContext, options: CaptureOptions, private readonly plan: Pick<RecordedSteps, 'windowSize' | 'starts'>) {
    const B = ctx.samples.length;
    const [C, h, w] = ctx.latentShape;
    this.W = plan.windowSize;
    this.per = C * h * w;
    // Allocated once, handed to the rollout as they are: no copy at the end either.
    if (options.latents) ctx.outputs.all_latents = this.latents = f32([B, this.W + 1, C, h, w]);
    if (options.timesteps) ctx.outputs.all_timesteps = this.timesteps = f32([B, this.W]);
    if (options.logProbs) ctx.outputs.rollout_log_probs = this.logProbs = f32([B, this.W]);
  }

  afterStep(step: StepContext, result: StepResult): void {
    const { W, per } = this;
    const B = step.batch.samples.length;
    const timestep = Math.fround(step.sigma * 1000);
    for (let b = 0; b < B; b++) {
      const k = step.index - (this.plan.starts ? this.plan.starts[b] : 0);
      if (k < 0 || k >= W) continue;
      if (this.latents) {
        const base = b * (W + 1) * per;
        if (k === 0) this.latents.data.set(step.latents.subarray(b * per, (b + 1) * per), base);
        this.latents.data.set(result.latents.subarray(b * per, (b + 1) * per), base + (k + 1) * per);
      }
      if (this.timesteps) this.timesteps.data[b * W + k] = timestep;
      if (this.logProbs) {
        if (!result.logProbs) throw new Error(`latent-capture: step ${step.index} gave no log-probs for capture.logProbs`);
        this.logProbs.data[b * W + k] = result.logProbs[b];
      }
    }
  }
}
