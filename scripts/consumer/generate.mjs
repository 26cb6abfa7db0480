// Consumer check (a): plain Node ESM, no TypeScript tooling, generates on the embedded model in
// the default inference thread. Run by scripts/consumer-check.mjs inside a fresh project.
import assert from 'node:assert/strict';
import { createWorker, EMBEDDED_MODEL_DIR } from 'omni-worker';

const worker = await createWorker();
try {
  const rollout = await worker.generate([{ prompt: 'a red circle at the top left on a white background', numOutputsPerPrompt: 2, seed: 0, steps: 2 }]);
  assert.deepEqual(rollout.batch.responses.shape, [2, 3, 32, 32]);
  assert.deepEqual(rollout.nonTensorBatch.seed, [0, 1]);
  assert.equal(rollout.metaInfo.model, EMBEDDED_MODEL_DIR);
  assert.ok(rollout.batch.responses.data.some((v) => v !== rollout.batch.responses.data[0]), 'the image is not blank');
} finally {
  await worker.close();
}
console.log(`plain ESM on Node ${process.versions.node}: generated 2 images on ${EMBEDDED_MODEL_DIR}`);
