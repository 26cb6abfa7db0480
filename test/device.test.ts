import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import * as ort from 'onnxruntime-node';
import { createWorker } from '../index.ts';
import { CUDA_PROVIDER_FILES, cudaRuntimeProblem, onnxRuntimeBinDir, prepareDeviceEnvironment } from '../core/model/execution-provider.ts';
import { inlineWorker } from './support/inline-worker.ts';

/** A folder holding stand-ins for the provider files (not ELF: ldd cannot tell, so only presence is checked). */
function fakeProviderDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'omni-ort-bin-'));
  for (const f of CUDA_PROVIDER_FILES) writeFileSync(join(dir, f), 'stand-in');
  return dir;
}

// CI has no GPU and no CUDA provider libraries: asking for CUDA must fail clearly, not fall back.
describe('execution providers', () => {
  it('names the provider that cannot load', async () => {
    await expect(inlineWorker({ device: 'cuda' })).rejects.toThrow(/cannot create the text_encoder session on 'cuda' \(execution provider 'cuda' could not be used/);
  });
});

ort.env.logLevel = 'fatal'; // ONNX Runtime logs the failed provider load itself; the test checks our error

const providerInstalled = CUDA_PROVIDER_FILES.every((f) => existsSync(join(onnxRuntimeBinDir(), f)));

describe('CUDA runtime check at worker start', () => {
  it.skipIf(providerInstalled)('a CUDA worker without the provider fails before loading, naming the setup command', async () => {
    // The model folder does not exist: the CUDA error, not a read error, shows the check came first.
    await expect(createWorker({ device: 'cuda', model: join(tmpdir(), 'omni-no-such-model') }))
      .rejects.toThrow(/device 'cuda': ONNX Runtime's CUDA provider is not installed \(libonnxruntime_providers_cuda\.so, libonnxruntime_providers_shared\.so missing in .*\): run `npx omni-worker setup cuda`/);
  });

  it('names the provider files that are missing, and where they belong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-ort-bin-'));
    writeFileSync(join(dir, 'libonnxruntime_providers_shared.so'), 'x');
    expect(() => prepareDeviceEnvironment('cuda', false, dir)).toThrow(`(libonnxruntime_providers_cuda.so missing in ${dir}): run \`npx omni-worker setup cuda\``);
  });

  it('names the CUDA libraries the provider cannot find, the driver apart', () => {
    const dir = fakeProviderDir();
    const ldd = (missing: string[]) => () => ['\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x1)', ...missing.map((m) => `\t${m} => not found`)].join('\n');
    expect(cudaRuntimeProblem(dir, ldd([]))).toBeUndefined();
    const libs = cudaRuntimeProblem(dir, ldd(['libcublasLt.so.13', 'libcudart.so.13']))!;
    expect(libs).toMatch(/cannot find libcublasLt\.so\.13, libcudart\.so\.13: install CUDA 13 .*LD_LIBRARY_PATH/);
    expect(libs).not.toMatch(/driver/);
    expect(cudaRuntimeProblem(dir, ldd(['libcuda.so.1']))).toMatch(/libcuda\.so\.1 is the NVIDIA driver/);
    expect(cudaRuntimeProblem(dir, () => undefined)).toBeUndefined(); // ldd cannot tell: ONNX Runtime's own error will
  });
});

describe('device environment', () => {
  it('asks cuBLAS/cuDNN for strict float32 on CUDA unless TF32 is allowed or the user chose', async () => {
    const saved = process.env.NVIDIA_TF32_OVERRIDE;
    const dir = fakeProviderDir();
    try {
      delete process.env.NVIDIA_TF32_OVERRIDE;
      prepareDeviceEnvironment('cpu', false);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBeUndefined();
      prepareDeviceEnvironment('cuda', true, dir);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBeUndefined();
      prepareDeviceEnvironment('cuda', false, dir);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBe('0');
      process.env.NVIDIA_TF32_OVERRIDE = '1';
      prepareDeviceEnvironment('cuda', false, dir);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBe('1');
    } finally {
      if (saved === undefined) delete process.env.NVIDIA_TF32_OVERRIDE;
      else process.env.NVIDIA_TF32_OVERRIDE = saved;
    }
  });
});
