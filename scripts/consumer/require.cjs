// Consumer check (a), CommonJS: require('omni-worker') (Node loads the ES module: 20.19 and later)
// and generate. Run by scripts/consumer-check.mjs inside a fresh project.
const assert = require('node:assert/strict');
const { createWorker } = require('omni-worker');

(async () => {
  const worker = await createWorker();
  try {
    const rollout = await worker.generate([{ prompt: 'a blue square', numOutputsPerPrompt: 1, seed: 3, steps: 2 }]);
    assert.deepEqual(rollout.nonTensorBatch.seed, [3]);
    assert.equal(rollout.batch.responses.shape[0], 1);
  } finally {
    await worker.close();
  }
  console.log(`require() on Node ${process.versions.node}: generated 1 image`);
})().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
