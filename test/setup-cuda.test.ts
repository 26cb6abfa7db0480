import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CUDA_PACKAGE, setupCuda } from '../cli/setup-cuda.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../bin/omni-worker.js', import.meta.url));

/** A package tarball shaped like the provider package, with small stand-in libraries. */
function fakePackage(files: Record<string, string>): { tgz: string; integrity: string; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'omni-cuda-pkg-'));
  const folder = join(root, CUDA_PACKAGE.folder);
  mkdirSync(folder, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(folder, name), text);
  writeFileSync(join(root, 'package', 'package.json'), '{"name":"fake"}');
  const tgz = join(root, 'fake.tgz');
  execFileSync('tar', ['-czf', tgz, '-C', root, 'package']);
  return { tgz, root, integrity: `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}` };
}

const PROVIDER = {
  'libonnxruntime_providers_cuda.so': 'cuda provider bytes',
  'libonnxruntime_providers_shared.so': 'shared bridge bytes',
  'libonnxruntime_providers_tensorrt.so': 'not wanted',
};

describe('omni-worker setup cuda', () => {
  it('puts the CUDA provider files beside libonnxruntime.so.1, and only those', async () => {
    const { tgz, integrity } = fakePackage(PROVIDER);
    const binDir = mkdtempSync(join(tmpdir(), 'omni-ort-bin-'));
    writeFileSync(join(binDir, 'libonnxruntime.so.1'), 'runtime');
    const r = await setupCuda({ from: tgz, binDir, integrity, onnxruntimeVersion: CUDA_PACKAGE.onnxruntimeNode });
    expect(r.installed).toEqual(['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    expect(readdirSync(binDir).sort()).toEqual(['libonnxruntime.so.1', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    expect(readFileSync(join(binDir, 'libonnxruntime_providers_cuda.so'), 'utf8')).toBe('cuda provider bytes');
    expect(readFileSync(join(binDir, 'libonnxruntime_providers_shared.so'), 'utf8')).toBe('shared bridge bytes');
  });

  it('installs nothing from a tarball whose integrity does not match', async () => {
    const { tgz } = fakePackage(PROVIDER);
    const binDir = mkdtempSync(join(tmpdir(), 'omni-ort-bin-'));
    await expect(setupCuda({ from: tgz, binDir, onnxruntimeVersion: CUDA_PACKAGE.onnxruntimeNode }))
      .rejects.toThrow(/does not match com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9's integrity .*nothing was installed/);
    expect(readdirSync(binDir)).toEqual([]);
  });

  it('refuses an onnxruntime-node other than the one the provider matches', async () => {
    const { tgz, integrity } = fakePackage(PROVIDER);
    await expect(setupCuda({ from: tgz, binDir: mkdtempSync(join(tmpdir(), 'omni-ort-bin-')), integrity, onnxruntimeVersion: '1.22.0' }))
      .rejects.toThrow(/matches onnxruntime-node 1\.29\.0, but 1\.22\.0 is installed/);
  });

  it('names the files a tarball lacks', async () => {
    const { tgz, integrity } = fakePackage({ 'libonnxruntime_providers_cuda.so': 'only this' });
    const binDir = mkdtempSync(join(tmpdir(), 'omni-ort-bin-'));
    await expect(setupCuda({ from: tgz, binDir, integrity, onnxruntimeVersion: CUDA_PACKAGE.onnxruntimeNode }))
      .rejects.toThrow(/cannot unpack .*libonnxruntime_providers_shared\.so/);
    expect(readdirSync(binDir)).toEqual([]);
  });

  it('checks the pinned integrity from the command line too', async () => {
    const { tgz } = fakePackage(PROVIDER);
    await expect(run('node', [bin, 'setup', 'cuda', '--from', tgz])).rejects.toMatchObject({ stderr: expect.stringMatching(/does not match .*integrity/) });
  });
});
