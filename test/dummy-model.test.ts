import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dummyModelCommand } from '../cli/dummy-model.ts';
import { loadModelFolder } from '../core/model/folder-loader.ts';
import { readSafetensorsTensors } from '../core/tensors/safetensors.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { inlineWorker } from './support/inline-worker.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../bin/omni-worker.js', import.meta.url));
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const ARCH = { hidden: 16, layers: 2, heads: 2, height: 8, width: 8, seed: 3 };

describe('omni-worker dummy-model', () => {
  it('writes a model folder that generate runs, through the command line', async () => {
    const dir = join(tmp('omni-dummy-'), 'model');
    const { stdout } = await run('node', [bin, 'dummy-model', '--out', dir, '--hidden', '16', '--layers', '1', '--heads', '4', '--height', '8', '--width', '8', '--dtype', 'bf16']);
    expect(stdout).toMatch(/parameters/);
    expect(readdirSync(dir).sort()).toEqual([
      'README.md', 'decoder.onnx', 'decoder.safetensors', 'model.json', 'text_encoder.onnx', 'text_encoder.safetensors',
      'tokenizer.json', 'transformer.onnx', 'transformer.safetensors',
    ]);
    const { tensors } = await readSafetensorsTensors(join(dir, 'transformer.safetensors'));
    expect(new Set(tensors.map(([, t]) => t.dtype))).toEqual(new Set(['BF16']));

    const out = join(dir, '..', 'out');
    const config = join(dir, '..', 'c.yaml');
    writeFileSync(config, `model: ${dir}\nthreads: 1\n`);
    await run('node', [bin, 'generate', '--prompt', 'a red circle', '--num-images', '2', '--steps', '2', '--out', out, '--config', config]);
    const rollout = await RolloutBatch.load(join(out, 'rollout.safetensors'));
    expect(rollout.batch.responses!.shape).toEqual([2, 3, 8, 8]);
  });

  it('holds exactly the weights the dummy loader builds for the same seed, so both generate the same images', async () => {
    const dir = join(tmp('omni-dummy-'), 'model');
    await dummyModelCommand({ out: dir, dtype: 'f32', ...ARCH });
    const fromFolder = await inlineWorker({ model: dir, loadFormat: 'onnx' });
    const inMemory = await inlineWorker({ loadFormat: 'dummy', loadOptions: ARCH });
    try {
      const request = [{ prompt: 'a blue square', numOutputsPerPrompt: 2, seed: 7 }];
      const a = await fromFolder.executeMethod('generate', request) as RolloutBatch;
      const b = await inMemory.executeMethod('generate', request) as RolloutBatch;
      expect(a.batch.latents_clean!.data).toEqual(b.batch.latents_clean!.data);
      expect(a.batch.responses!.data).toEqual(b.batch.responses!.data);
    } finally {
      await fromFolder.close();
      await inMemory.close();
    }
  });

  it('refuses a graph that is not ONNX, and one over ONNX\'s 2 GiB limit with an error that says where weights belong', async () => {
    const dir = join(tmp('omni-dummy-'), 'model');
    await dummyModelCommand({ out: dir, dtype: 'f32', ...ARCH });
    writeFileSync(join(dir, 'decoder.onnx'), Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    await expect(loadModelFolder(dir)).rejects.toThrow(/the decoder graph .*decoder\.onnx is not an ONNX model/);
    truncateSync(join(dir, 'transformer.onnx'), 2 ** 31 + 1); // sparse: no disk used
    await expect(loadModelFolder(dir)).rejects.toThrow(/transformer graph .* is 2147483649 bytes, over ONNX's 2 GiB limit .*take their weights as inputs from \.safetensors/);
  });

  it('refuses bad arguments before writing anything', async () => {
    const root = tmp('omni-dummy-');
    writeFileSync(join(root, 'keep.txt'), 'mine');
    await expect(dummyModelCommand({ out: root, dtype: 'f32' })).rejects.toThrow(/is not empty \(1 entries\): choose a new or empty folder/);
    expect(readFileSync(join(root, 'keep.txt'), 'utf8')).toBe('mine');
    const fresh = join(root, 'm');
    await expect(dummyModelCommand({ out: fresh, dtype: 'f32', hidden: 30, heads: 4 })).rejects.toThrow(/--hidden 30 is not a multiple of --heads 4/);
    await expect(dummyModelCommand({ out: fresh, dtype: 'f32', height: 15 })).rejects.toThrow(/--height and --width must be multiples of 2.*15x16/);
    expect(readdirSync(root)).toEqual(['keep.txt']);
    await expect(run('node', [bin, 'dummy-model', '--out', fresh, '--dtype', 'f8'])).rejects.toMatchObject({ stderr: expect.stringMatching(/Allowed choices are f32, f16, bf16/) });
  });
});
