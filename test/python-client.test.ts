// The Python client's unittest suite (clients/python/tests) against a real `omni-worker serve`:
// once with numpy where it imports, once on the standard library alone (numpy and torch made
// unimportable), and the README's "Use from Python" example among them.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensorsFile } from '../core/tensors/safetensors.ts';
import { runPython } from './support/python-process.ts';
import { REPO, startServe, type ServeProcess } from './support/serve-process.ts';
import { asRecord, dummyWeights } from './support/weights.ts';

const PYTHON = spawnSync('python3', ['--version']).status === 0 ? 'python3' : undefined;
const CLIENT = join(REPO, 'clients/python');

const python = (args: string[], env: Record<string, string>) => runPython(args, CLIENT, env);

describe.skipIf(!PYTHON)('python client (clients/python)', () => {
  let dir: string;
  let serve: ServeProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omni-py-'));
    // The served dummy model holds seed 0's weights; seed 1's are the trainer's "new" ones.
    for (const seed of [0, 1]) await writeSafetensorsFile(join(dir, `transformer-seed${seed}.safetensors`), asRecord(dummyWeights(seed).transformer));
    serve = await startServe(dir);
    env = {
      OMNI_WORKER_URL: serve.url,
      OMNI_WORKER_WEIGHTS: dir,
      // The README example sends the serving weights back, so later tests see the same model.
      TRAINER_WEIGHTS: join(dir, 'transformer-seed0.safetensors'),
      ADAPTER_DIR: join(REPO, 'test/fixtures/lora/attn-r4'),
      PYTHONDONTWRITEBYTECODE: '1',
    };
  });

  afterAll(async () => {
    if (serve) expect(await serve.stop()).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it('passes its unittest suite, numpy path where numpy imports', async () => {
    const r = await python(['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], env);
    expect(r.output).toMatch(/\nOK/);
    expect(r.code).toBe(0);
  });

  it('passes its unittest suite on the standard library alone', async () => {
    // Stub packages that refuse to import stand in for a Python without numpy and torch.
    const stubs = join(dir, 'no-numpy');
    for (const name of ['numpy', 'torch']) {
      await mkdir(join(stubs, name), { recursive: true });
      await writeFile(join(stubs, name, '__init__.py'), `raise ImportError('${name} hidden by the standard-library test')\n`);
    }
    const bare = { ...env, PYTHONPATH: stubs };
    const probe = await python(['-c', 'import omni_worker.tensor as t; print(t.np, t.torch, t.default_return_type())'], bare);
    expect(probe.output.trim()).toBe('None None tensor');
    const r = await python(['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], bare);
    expect(r.output).toMatch(/\nOK \(skipped=\d+\)/);
    expect(r.code).toBe(0);
  });
});
