import { describe, expect, it } from 'vitest';
import { inlineWorker } from './support/inline-worker.ts';

// CI has no GPU and no CUDA provider libraries: asking for CUDA must fail clearly, not fall back.
describe('execution providers', () => {
  it('names the provider that cannot load', async () => {
    await expect(inlineWorker({ device: 'cuda' })).rejects.toThrow(/cannot create the text_encoder session on 'cuda' \(execution provider 'cuda' could not be used/);
  });
});

describe('device environment', () => {
  it('asks cuBLAS/cuDNN for strict float32 on CUDA unless TF32 is allowed or the user chose', async () => {
    const { prepareDeviceEnvironment } = await import('../core/model/execution-provider.ts');
    const saved = process.env.NVIDIA_TF32_OVERRIDE;
    try {
      delete process.env.NVIDIA_TF32_OVERRIDE;
      prepareDeviceEnvironment('cpu', false);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBeUndefined();
      prepareDeviceEnvironment('cuda', true);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBeUndefined();
      prepareDeviceEnvironment('cuda', false);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBe('0');
      process.env.NVIDIA_TF32_OVERRIDE = '1';
      prepareDeviceEnvironment('cuda', false);
      expect(process.env.NVIDIA_TF32_OVERRIDE).toBe('1');
    } finally {
      if (saved === undefined) delete process.env.NVIDIA_TF32_OVERRIDE;
      else process.env.NVIDIA_TF32_OVERRIDE = saved;
    }
  });
});
