// The Flow-GRPO example's parts that need no PyTorch (examples/flow-grpo/tests: prompts, reward,
// advantages, rollout bookkeeping, phase timing), with a real `omni-worker serve` for the
// bookkeeping and the reward classifier run by the worker's ONNX Runtime on three-object renders.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsFile, writeSafetensorsFile } from '../core/tensors/safetensors.ts';
import { SceneAlignmentReward } from '../rewards/scene-alignment.ts';
import { runPython } from './support/python-process.ts';
import { REPO, startServe, type ServeProcess } from './support/serve-process.ts';
import { asRecord, dummyWeights } from './support/weights.ts';

const NUMPY = spawnSync('python3', ['-c', 'import numpy']).status === 0;
const EXAMPLE = join(REPO, 'examples/flow-grpo');
const PYTHONPATH = [join(REPO, 'python'), join(REPO, 'clients/python'), EXAMPLE].join(':');

const python = (args: string[], env: Record<string, string>) =>
  runPython(args, EXAMPLE, { PYTHONPATH, PYTHONDONTWRITEBYTECODE: '1', ...env });

describe.skipIf(!NUMPY)('flow-grpo example (python3 + numpy, no PyTorch)', () => {
  let dir: string;
  let serve: ServeProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omni-flow-grpo-'));
    const weights = join(dir, 'transformer-seed0.safetensors');
    await writeSafetensorsFile(weights, asRecord(dummyWeights(0).transformer));
    serve = await startServe(dir);
    // Three-object renders (Python) classified by the reward's ONNX graph (here, in ONNX Runtime).
    const renders = join(dir, 'renders.safetensors');
    const made = await python(['-m', 'flow_grpo.scenes3', '--out', renders, '--n', '64'], {});
    expect(made.output).toBe('');
    const file = await readSafetensorsFile(renders);
    const reward = await SceneAlignmentReward.load();
    const images = file.get('images');
    expect(images.dtype).toBe('U8');
    const out = await reward.classify({ data: images.data as Uint8Array, shape: images.shape });
    await reward.dispose();
    const classified = join(dir, 'classified.safetensors');
    await writeSafetensorsFile(classified, {
      shape_logits: { dtype: 'F32', shape: [out.batch, 5, 4], data: out.shapeLogits },
      color_logits: { dtype: 'F32', shape: [out.batch, 5, 6], data: out.colorLogits },
    }, { prompts: file.metadata['prompts']!, wrong_prompts: file.metadata['wrong_prompts']! });
    env = { OMNI_WORKER_URL: serve.url, FLOW_GRPO_WEIGHTS: weights, FLOW_GRPO_CLASSIFIED: classified };
  });

  afterAll(async () => {
    if (serve) expect(await serve.stop()).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it('passes its unittest suite against a real server and the real reward classifier', async () => {
    const r = await python(['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], env);
    expect(r.output).toMatch(/\nOK\s*$/); // nothing skipped: the live and classifier tests ran
    expect(r.code).toBe(0);
  });
});
