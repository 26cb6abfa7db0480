// Consumer check (b): a typed consumer, checked by `tsc --noEmit` with strict and module nodenext
// and no experimental decorators: the package's declarations must hold under these settings, and
// its RPC types must check arguments and type results (each @ts-expect-error line fails the check
// if it ever stops being an error).
import { createWorker, definePlugin, RolloutBatch, type GenerateRequest, type LoadWeightsResult, type OmniWorker, type WorkerServices } from 'omni-worker';

// A consumer's plugin adds its method to the typed method map by declaration merging.
declare module 'omni-worker' {
  interface OmniWorkerMethods {
    stepsSeen(): number;
  }
}

export const stepCounter = definePlugin({
  name: 'step-counter',
  apply({ hooks, declare }) {
    let steps = 0;
    hooks.afterStep.tap('step-counter', () => { steps++; });
    declare.method('stepsSeen', () => steps);
  },
});

/** Typed RPC from the package entry: results typed, wrong arguments refused. Type-checked only. */
export async function typedRpc(worker: OmniWorker): Promise<number> {
  const loaded: LoadWeightsResult = await worker.executeMethod('loadWeights', { source: 'transformer.safetensors', bucket: true });
  const seen: number = await worker.executeMethod('stepsSeen');
  const fromExtension: unknown = await worker.executeMethod('someExtensionMethod', 1, 'two');
  // @ts-expect-error: loadWeights needs a source
  await worker.executeMethod('loadWeights', { component: 'transformer' });
  // @ts-expect-error: sleep levels are 1 and 2
  await worker.executeMethod('sleep', { level: 3 });
  // @ts-expect-error: listMethods gives strings
  const wrong: number[] = await worker.executeMethod('listMethods');
  // @ts-expect-error: a request needs a prompt
  await worker.generate([{ seed: 1 }]);
  return loaded.weightsVersion + seen + wrong.length + (fromExtension ? 1 : 0);
}

const requests: GenerateRequest[] = [{ prompt: 'a blue square', numOutputsPerPrompt: 2, seed: 7, guidanceScale: 1 }];
const seeds: Partial<WorkerServices> = { randomSeed: () => 42 };

export async function main(): Promise<number> {
  const worker: OmniWorker = await createWorker({ executor: 'inline', maxBatchSize: 4 }, { services: seeds });
  try {
    const rollout: RolloutBatch = await worker.generate(requests);
    const images = rollout.batch.responses;
    if (!images) throw new Error('no images');
    const shape: readonly number[] = images.shape;
    const halves: RolloutBatch[] = rollout.chunk(2);
    const methods: string[] = await worker.executeMethod('listMethods');
    const version: number = (await worker.executeMethod('getState')).weightsVersion;
    const states: unknown[] = await worker.collectiveRpc('getState');
    return shape.length + halves.length + methods.length + version + states.length;
  } finally {
    await worker.close();
  }
}
