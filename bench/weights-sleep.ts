// Sleep and wake: times, and memory freed against the weights' own bytes (measured after a GC:
// process rss and ArrayBuffers on the host, nvidia-smi on CUDA). Output after each wake is checked
// bit for bit against the output before the first sleep.
import type { RolloutData } from '../core/protocol.ts';
import { serializeSafetensors } from '../core/tensors/safetensors.ts';
import { tensorBytes } from '../core/tensors/tensor.ts';
import type { SleepResult } from '../plugins/sleep-mode/index.ts';
import { measureDevice } from '../plugins/sleep-mode/memory.ts';
import { benchWorker, round, timeReps, type BenchModel, type BenchOptions } from './weights-common.ts';

const same = (a: RolloutData, b: RolloutData) => Object.keys(a.batch).every((k) =>
  Buffer.from(tensorBytes(a.batch[k])).equals(Buffer.from(tensorBytes(b.batch[k]))));

export async function benchSleep(o: BenchOptions, model: BenchModel, steps?: number) {
  const cuda = o.device === 'cuda';
  const w = await benchWorker(o, model, ['dummy-loader', 'weight-sync', { name: 'sleep-mode', options: { measureDevice: cuda } }]);
  try {
    const reqs = [{ prompt: 'a red circle', seeds: [1, 2], ...(steps ? { steps } : {}) }];
    const gen = () => w.executeMethod('generate', reqs) as Promise<RolloutData>;
    const before = await gen();
    const deviceAwake = cuda ? await measureDevice() : undefined;
    const stateDicts = w.worker.weights.components.map((c) => [c, serializeSafetensors(w.worker.weights.get(c)!)] as const);
    const sleep = async (level: number) => (await w.executeMethod('sleep', { level })) as SleepResult;
    const time = async (fn: () => Promise<unknown>) => (await timeReps(1, fn))[0];
    const summary = (r: SleepResult) => ({
      seconds: round(r.seconds),
      released: r.released,
      weightsBytes: r.weightsBytes,
      hostFreed: { rss: r.host.rss, arrayBuffers: r.host.arrayBuffers },
      freedOfWeights: { rss: round(r.host.rss / r.weightsBytes), arrayBuffers: round(r.host.arrayBuffers / r.weightsBytes), ...(r.deviceFreedBytes !== undefined ? { device: round(r.deviceFreedBytes / r.weightsBytes) } : {}) },
      ...(r.deviceFreedBytes !== undefined ? { deviceFreedBytes: r.deviceFreedBytes } : {}),
    });

    const l1 = await sleep(1);
    const wake1 = await time(() => w.executeMethod('wakeUp'));
    let firstGen = await time(async () => { if (!same(await gen(), before)) throw new Error('level 1: output changed'); });
    const level1 = { sleep: summary(l1), wakeSeconds: round(wake1), firstRolloutSeconds: round(firstGen), identical: true };

    const l2 = await sleep(2);
    const wake2 = await time(() => w.executeMethod('wakeUp')); // reload from the checkpoint
    firstGen = await time(async () => { if (!same(await gen(), before)) throw new Error('level 2 + reload: output changed'); });
    await sleep(2);
    // The RL order: wake the sessions, then the trainer's full state dict (bucketed) replaces the weights.
    const wakeLoad = await time(async () => {
      await w.executeMethod('wakeUp', ['sessions']);
      for (const [component, source] of stateDicts) await w.executeMethod('loadWeights', { component, source, bucket: true });
      await w.executeMethod('finishWeightUpdate');
    });
    if (!same(await gen(), before)) throw new Error('level 2 + loadWeights: output changed');
    // Weights that came in by loadWeights sit in one block per update: freed whole.
    const l2loaded = await sleep(2);
    await w.executeMethod('wakeUp');
    return {
      model: model.name,
      ...(deviceAwake !== undefined ? { deviceBytesAwake: deviceAwake } : {}),
      level1,
      level2: {
        sleep: summary(l2),
        wakeReloadCheckpointSeconds: round(wake2),
        firstRolloutSeconds: round(firstGen),
        wakeSessionsThenLoadWeightsSeconds: round(wakeLoad),
        identical: true,
      },
      level2AfterLoadWeights: { sleep: summary(l2loaded) },
    };
  } finally {
    await w.close();
  }
}
