import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { decode } from 'fast-png';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../bin/omni-worker.js', import.meta.url));

describe('omni-worker generate', () => {
  it('writes one PNG per image, a grid and the rollout', async () => {
    const out = mkdtempSync(join(tmpdir(), 'omni-cli-'));
    const config = join(out, 'c.yaml');
    writeFileSync(config, 'loadFormat: dummy\nloadOptions: { height: 16, width: 16, downscale: 2 }\nthreads: 1\n');
    const { stdout } = await run('node', [bin, 'generate', '--prompt', 'a red circle', '--num-images', '3', '--steps', '3', '--guidance', '2', '--seed', '5', '--out', out, '--config', config]);
    expect(stdout).toMatch(/step 3\/3/); // plain progress lines when not on a terminal
    const files = readdirSync(out).sort();
    expect(files).toEqual(['c.yaml', 'grid.png', 'image-000-seed5.png', 'image-001-seed6.png', 'image-002-seed7.png', 'rollout.safetensors']);
    const png = decode(readFileSync(join(out, 'image-001-seed6.png')));
    expect([png.width, png.height, png.channels]).toEqual([16, 16, 3]);
    const rollout = await RolloutBatch.load(join(out, 'rollout.safetensors'));
    expect(rollout.length).toBe(3);
    expect(rollout.batch.responses.shape).toEqual([3, 3, 16, 16]);
    // The PNG holds the rollout's image (CHW -> HWC).
    const r = rollout.batch.responses.data as Uint8Array;
    expect(png.data[0]).toBe(r[1 * 768 + 0]);
    expect(png.data[1]).toBe(r[1 * 768 + 256]);
    expect(rollout.nonTensorBatch.seed).toEqual([5, 6, 7]);
    expect(rollout.metaInfo.guidance_scale).toBe(2);
    expect(rollout.metaInfo.steps).toBe(3);
  });

  it('fails with a clear message on bad arguments', async () => {
    await expect(run('node', [bin, 'generate', '--prompt', 'x', '--num-images', '0'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--num-images must be an integer >= 1/) });
    await expect(run('node', [bin, 'generate', '--prompt', 'x', '--config', '/nonexistent.yaml'])).rejects.toMatchObject({ stderr: expect.stringMatching(/cannot read config \/nonexistent.yaml/) });
  });
});
