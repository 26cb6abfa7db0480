// Core's own taps: the 'onnx' folder loader, the Euler step and the decoder. They run at
// CORE_FALLBACK_STAGE, after every plugin, so a plugin answering first replaces them.
import { CORE_FALLBACK_STAGE, type WorkerHooks } from '../hooks.ts';
import { eulerStep } from '../scheduler/flow-match.ts';
import { f32 } from '../tensors/tensor.ts';
import type { DiffusionWorker } from './diffusion-worker.ts';

const NAME = 'core';
const fallback = { name: NAME, stage: CORE_FALLBACK_STAGE };

export function applyCoreTaps(hooks: WorkerHooks, worker: DiffusionWorker): void {
  hooks.loadModel.for('onnx').tapPromise(fallback, async (req) => {
    if (!req.model) throw new Error("loadFormat 'onnx' needs a model folder (config.model)");
    return worker.services.modelFolder(req.model);
  });

  hooks.schedulerStep.tap(fallback, (step) => ({
    latents: eulerStep(step.latents, step.velocity, step.sigma, step.sigmaNext),
  }));

  hooks.decode.tapPromise(fallback, async (latents, ctx) => {
    const decoder = worker.model.components.decoder;
    if (!decoder) return latents; // pixel-space model: the latents are the image
    const out = await decoder.run({ latent_sample: latents }, ctx.weights.decoder!);
    const sample = out.sample;
    return f32([...sample.shape], sample.data as Float32Array);
  });
}
