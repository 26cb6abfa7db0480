import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { decode } from 'fast-png';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { prepareOutDir } from '../cli/out-dir.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../bin/omni-worker.js', import.meta.url));
const SMALL = 'loadFormat: dummy\nloadOptions: { height: 16, width: 16, downscale: 2 }\nthreads: 1\n';

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
    expect(rollout.batch.responses!.shape).toEqual([3, 3, 16, 16]);
    // The PNG holds the rollout's image (CHW -> HWC).
    const r = rollout.batch.responses!.data as Uint8Array;
    expect(png.data[0]).toBe(r[1 * 768 + 0]);
    expect(png.data[1]).toBe(r[1 * 768 + 256]);
    expect(rollout.nonTensorBatch.seed).toEqual([5, 6, 7]);
    expect(rollout.metaInfo.guidance_scale).toBe(2);
    expect(rollout.metaInfo.steps).toBe(3);
  });

  it('refuses a --config that is not a regular file at once (a FIFO blocked the process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-cli-'));
    const fifo = join(dir, 'config.yaml');
    execFileSync('mkfifo', [fifo]);
    const refused = await run('node', [bin, 'generate', '--prompt', 'x', '--config', fifo, '--out', join(dir, 'out')], { timeout: 20_000 })
      .then(() => undefined, (e: { stderr: string; killed: boolean }) => e);
    expect(refused?.killed).toBe(false);
    expect(refused?.stderr).toMatch(`cannot read config ${fifo}: ${fifo} is a FIFO (named pipe), not a regular file`);
  });

  it('prints the package version with --version', async () => {
    const { version } = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string };
    expect((await run('node', [bin, '--version'])).stdout).toBe(`${version}\n`);
  });

  it('fails with a clear message on bad arguments', async () => {
    await expect(run('node', [bin, 'generate', '--prompt', 'x', '--num-images', '0'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--num-images must be an integer >= 1/) });
    // Its own --out: the default (out/ in the working folder) may hold the README's first command's run.
    const out = join(mkdtempSync(join(tmpdir(), 'omni-cli-')), 'out');
    await expect(run('node', [bin, 'generate', '--prompt', 'x', '--config', '/nonexistent.yaml', '--out', out])).rejects.toMatchObject({ stderr: expect.stringMatching(/cannot read config \/nonexistent.yaml/) });
    expect(existsSync(out)).toBe(false); // a bad config leaves no output folder behind
  });

  it("refuses a folder holding an earlier run's outputs before the model loads; --overwrite replaces them and keeps other files", async () => {
    const out = mkdtempSync(join(tmpdir(), 'omni-cli-'));
    const config = join(out, 'c.yaml');
    writeFileSync(config, SMALL);
    const args = ['generate', '--prompt', 'a red circle', '--steps', '2', '--out', out, '--config', config];
    await run('node', [bin, ...args, '--num-images', '3', '--seed', '5']);
    const refused = await run('node', [bin, ...args, '--num-images', '1']).then(() => undefined, (e: { stdout: string; stderr: string }) => e);
    expect(refused?.stderr).toMatch(/--out .* holds an earlier run's outputs \(grid\.png, image-000-seed5\.png, image-001-seed6\.png, image-002-seed7\.png, \.\.\. \(5 files\)\)/);
    expect(refused?.stderr).toMatch(/pass --overwrite to replace them/);
    expect(refused?.stdout).not.toMatch(/step/); // nothing ran
    expect(readdirSync(out)).toHaveLength(6);
    await run('node', [bin, ...args, '--num-images', '1', '--overwrite']);
    expect(readdirSync(out).sort()).toEqual(['c.yaml', 'grid.png', 'image-000-seed0.png', 'rollout.safetensors']);
    expect((await RolloutBatch.load(join(out, 'rollout.safetensors'))).length).toBe(1);
  });

  it('refuses an --out that cannot take the outputs before the model loads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-cli-'));
    const file = join(dir, 'taken');
    writeFileSync(file, 'x');
    writeFileSync(join(dir, 'c.yaml'), SMALL);
    const e = await run('node', [bin, 'generate', '--prompt', 'x', '--out', file, '--config', join(dir, 'c.yaml')]).then(() => undefined, (x: { stdout: string; stderr: string }) => x);
    expect(e?.stderr).toMatch(/--out .*taken exists and is not a folder/);
    expect(e?.stdout).not.toMatch(/step/);
    expect(readFileSync(file, 'utf8')).toBe('x');
    // The same checks, without a process each.
    await expect(prepareOutDir('', false)).rejects.toThrow(/--out must name a folder \(got an empty string\)/);
    await expect(prepareOutDir(join(file, 'below'), false)).rejects.toThrow(/--out .*taken\/below: cannot use the path \(ENOTDIR\)/);
    await expect(prepareOutDir('/proc/self', false)).rejects.toThrow(/--out \/proc\/self is on the kernel's proc filesystem/);
    await expect(prepareOutDir('/proc/omni-worker-out', false)).rejects.toThrow(/proc filesystem/);
    await expect(prepareOutDir('/sys/omni-worker-out/deeper', false)).rejects.toThrow(/sysfs filesystem/);
    const fresh = join(dir, 'a', 'b');
    expect(await prepareOutDir(fresh, false)).toEqual({ path: fresh, stale: [] });
    expect(readdirSync(fresh)).toEqual([]); // created, the probe gone
    writeFileSync(join(fresh, 'notes.txt'), ''); // other files do not matter
    writeFileSync(join(fresh, 'grid.png'), '');
    await expect(prepareOutDir(fresh, false)).rejects.toThrow(/holds an earlier run's outputs \(grid\.png\)/);
    expect(await prepareOutDir(fresh, true)).toEqual({ path: fresh, stale: ['grid.png'] });
    mkdirSync(join(fresh, 'rollout.safetensors'));
    await expect(prepareOutDir(fresh, true)).rejects.toThrow(/rollout\.safetensors is in the way and is not a file/);
  });
});
