// One Flow-GRPO-style step against the worker, as a trainer drives it (verl's order):
// generate a group per prompt with SDE log-probs -> score -> sleep -> (train) -> wake ->
// load new weights -> generate again, and check on-policy log-probs by scoring mode.
//   node bin/run-ts.js examples/grpo-step.ts
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWorker, EMBEDDED_MODEL_DIR, rewards, scoreArgsFromRollout, type RolloutBatch } from '../index.ts';

export async function grpoStep(config?: Parameters<typeof createWorker>[0]) {
  const worker = await createWorker(config);
  const scorer = await rewards.SceneAlignmentReward.load();
  try {
    const prompts = ['a red circle at the top left', 'a blue square on a black background'];
    const rollout: RolloutBatch = await worker.generate(prompts.map((prompt, i) => ({
      prompt,
      numOutputsPerPrompt: 4,                      // the GRPO group
      seed: 1000 * i,
      sde: { type: 'sde', noiseLevel: 0.7, window: { size: 2, range: [0, 5] } },
      capture: { latents: true, timesteps: true, logProbs: true },
    })));
    const images = rollout.batch.responses!;
    const reward = await scorer.score({ data: images.data as Uint8Array, shape: images.shape as [number, number, number, number] }, rollout.nonTensorBatch.prompt!);

    // On-policy check: the trainer's recomputation of the rollout's log-probs gives ratio 1.
    // (RPC results are typed: computeLogProbs returns the sde-scheduler's ScoreResult.)
    const { logProbs } = await worker.executeMethod('computeLogProbs', scoreArgsFromRollout(rollout));
    const stored = rollout.batch.rollout_log_probs!.data as Float32Array;
    const maxRatioError = Math.max(...Array.from(stored, (v, k) => Math.abs(Math.exp((logProbs.data[k] as number) - v) - 1)));

    // The trainer takes the GPU, then hands back new weights (here: the same ones, as bytes).
    const slept = await worker.executeMethod('sleep', { level: 1 });
    await worker.executeMethod('wakeUp', { tags: ['sessions'] });
    const { weightsVersion } = await worker.executeMethod('loadWeights', { component: 'transformer', source: `${EMBEDDED_MODEL_DIR}/transformer.safetensors` });
    const next = await worker.generate([{ prompt: prompts[0], seed: 0 }]);
    return { rollout, reward, maxRatioError, freedBytes: slept.freedBytes, weightsVersion, nextVersion: next.metaInfo.weights_version };
  } finally {
    scorer.dispose();
    await worker.close();
  }
}

if (fileURLToPath(import.meta.url) === resolve(process.argv[1] ?? '')) {
  const r = await grpoStep();
  console.log({
    samples: r.rollout.length,
    all_latents: r.rollout.batch.all_latents!.shape,
    rollout_log_probs: r.rollout.batch.rollout_log_probs!.shape,
    reward: Array.from(r.reward, (x) => +x.toFixed(2)),
    maxRatioError: r.maxRatioError,
    weightsVersion: r.weightsVersion,
  });
}
