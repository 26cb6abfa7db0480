// A worker extension class, as an RL trainer would write one (vLLM's worker_extension_cls):
// its public methods become callable by name through executeMethod / collectiveRpc.
import type { ExtensionContext } from '../index.ts';

// Types the methods for executeMethod (from a package: declare module 'omni-worker').
declare module '../index.ts' {
  interface OmniWorkerMethods {
    reportWeights(): ReturnType<RlExtension['reportWeights']>;
    meanPixel(prompt: string, groupSize: number, seed: number): number[];
  }
}

export class RlExtension {
  constructor(private readonly ctx: ExtensionContext) {}

  /** What the trainer checks before a step: which weights and which model the worker runs. */
  reportWeights(): { weightsVersion: number; model: string; components: Record<string, number> } {
    const { weights, model } = this.ctx;
    const components: Record<string, number> = {};
    for (const [name, map] of Object.entries(weights.set)) components[name] = map?.size ?? 0;
    return { weightsVersion: weights.version, model: model.source.origin, components };
  }

  /** A group rollout that returns only what the trainer scores: mean pixel value per sample. */
  async meanPixel(prompt: string, groupSize: number, seed: number): Promise<number[]> {
    const r = await this.ctx.executeMethod('generate', [{ prompt, numOutputsPerPrompt: groupSize, seed }]);
    const { shape } = r.batch.responses!;
    const data = r.batch.responses!.data as Uint8Array; // images are uint8
    const per = data.length / shape[0];
    return Array.from({ length: shape[0] }, (_, b) => data.subarray(b * per, (b + 1) * per).reduce((s, v) => s + v, 0) / per);
  }

  /** Private by convention: not callable by name. */
  _helper(): void {}
}

/** Defines a method the worker already has: applying it is an error naming both. */
export class ClashingExtension {
  generate(): string {
    return 'mine';
  }
}
