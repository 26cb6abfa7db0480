// Consumer check (b): a typed consumer, checked by `tsc --noEmit` with strict and module nodenext
// and no experimental decorators: the package's declarations must hold under these settings.
import { createWorker, RolloutBatch, type GenerateRequest, type OmniWorker, type WorkerServices } from 'omni-worker';

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
    const methods: unknown = await worker.executeMethod('listMethods');
    const states: unknown[] = await worker.collectiveRpc('getState');
    return shape.length + halves.length + (Array.isArray(methods) ? methods.length : 0) + states.length;
  } finally {
    await worker.close();
  }
}
