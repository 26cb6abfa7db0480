// `omni-worker setup cuda`: puts ONNX Runtime's CUDA execution provider beside onnxruntime-node's
// libonnxruntime.so.1, from the npm registry package that ships ONNX Runtime 1.29.0's Linux x64 GPU
// providers built for CUDA 13. The tarball is fetched with the npm CLI and checked against the
// integrity pinned here before anything is unpacked.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, readdir, rename, rm, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CUDA_PROVIDER_FILES, cudaRuntimeProblem, onnxRuntimeBinDir } from '../core/model/execution-provider.ts';

const run = promisify(execFile);

/** The provider package, the onnxruntime-node version it matches (the provider bridge is version-locked) and its registry integrity. */
export const CUDA_PACKAGE = {
  spec: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9',
  onnxruntimeNode: '1.29.0',
  integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==',
  /** Where the provider files lie inside the tarball. */
  folder: 'package/Plugins/Linux/x64',
};

export interface SetupCudaOptions {
  /** A tarball already on disk (an offline machine); fetched with `npm pack` when absent. */
  from?: string;
  /** Where the provider goes (default: onnxruntime-node's native folder). */
  binDir?: string;
  /** onnxruntime-node's version (default: the installed one). */
  onnxruntimeVersion?: string;
  /** Expected sha512 integrity of the tarball (default: the pinned one). */
  integrity?: string;
  log?: (line: string) => void;
}

export interface SetupCudaResult {
  binDir: string;
  installed: string[];
  /** What still keeps CUDA from loading (missing CUDA libraries), or undefined. */
  problem: string | undefined;
}

async function sha512(path: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('base64')}`;
}

const installedOrtVersion = (): string => (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

/** Fetches the package tarball into `dir` through the npm CLI (its registry, proxy and cache settings apply). */
async function npmPack(dir: string): Promise<string> {
  try {
    await run('npm', ['pack', CUDA_PACKAGE.spec, '--pack-destination', dir, '--silent'], { maxBuffer: 64 << 20 });
  } catch (e) {
    throw new Error(`npm pack ${CUDA_PACKAGE.spec} failed (is the npm registry reachable?): ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
  }
  const tgz = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`npm pack ${CUDA_PACKAGE.spec} wrote no tarball`);
  return join(dir, tgz);
}

export async function setupCuda(opts: SetupCudaOptions = {}): Promise<SetupCudaResult> {
  const log = opts.log ?? (() => undefined);
  if (opts.binDir === undefined && (process.platform !== 'linux' || process.arch !== 'x64')) {
    throw new Error(`setup cuda: the CUDA provider package is for Linux x64; this is ${process.platform} ${process.arch}`);
  }
  const version = opts.onnxruntimeVersion ?? installedOrtVersion();
  if (version !== CUDA_PACKAGE.onnxruntimeNode) {
    throw new Error(`setup cuda: ${CUDA_PACKAGE.spec} matches onnxruntime-node ${CUDA_PACKAGE.onnxruntimeNode}, but ${version} is installed (pin onnxruntime-node to ${CUDA_PACKAGE.onnxruntimeNode})`);
  }
  const binDir = opts.binDir ?? onnxRuntimeBinDir();
  const work = await mkdtemp(join(tmpdir(), 'omni-setup-cuda-'));
  try {
    let tarball = opts.from;
    if (!tarball) {
      log(`fetching ${CUDA_PACKAGE.spec} (about 180 MB) from the npm registry`);
      tarball = await npmPack(work);
    }
    const expected = opts.integrity ?? CUDA_PACKAGE.integrity;
    const actual = await sha512(tarball);
    if (actual !== expected) throw new Error(`setup cuda: ${tarball} does not match ${CUDA_PACKAGE.spec}'s integrity (expected ${expected}, got ${actual}); nothing was installed`);
    const members = CUDA_PROVIDER_FILES.map((f) => `${CUDA_PACKAGE.folder}/${f}`);
    try {
      await run('tar', ['-xzf', tarball, '-C', work, ...members]);
    } catch (e) {
      throw new Error(`setup cuda: cannot unpack ${members.join(', ')} from ${tarball}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
    }
    // Each file copied beside its final name, then renamed: a process loading the provider never sees half a file.
    for (const f of CUDA_PROVIDER_FILES) {
      const staged = join(binDir, `.${f}.partial`);
      try {
        await copyFile(join(work, CUDA_PACKAGE.folder, f), staged);
        await rename(staged, join(binDir, f));
      } catch (e) {
        await unlink(staged).catch(() => undefined);
        throw new Error(`setup cuda: cannot write ${join(binDir, f)}: ${(e as Error).message}`);
      }
    }
    log(`CUDA provider in place: ${CUDA_PROVIDER_FILES.map((f) => join(binDir, f)).join(', ')}`);
    return { binDir, installed: [...CUDA_PROVIDER_FILES], problem: cudaRuntimeProblem(binDir) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
