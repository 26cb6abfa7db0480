import { describe, expect, it } from 'vitest';
import { inlineWorker } from './support/inline-worker.ts';

// CI has no GPU and no CUDA provider libraries: asking for CUDA must fail clearly, not fall back.
describe('execution providers', () => {
  it('names the provider that cannot load', async () => {
    await expect(inlineWorker({ device: 'cuda' })).rejects.toThrow(/cannot create the text_encoder session on 'cuda' \(execution provider 'cuda' could not be used/);
  });
});
