import { describe, expect, it } from 'vitest';
import { TOKENS } from '../core/tokens.ts';
import { inlineWorker } from './support/inline-worker.ts';

describe('container and disposal', () => {
  it('gives each worker its own child container and services', async () => {
    const a = await inlineWorker();
    const b = await inlineWorker();
    expect(a.container).not.toBe(b.container);
    expect(a.container.resolve(TOKENS.worker)).toBe(a.worker);
    expect(a.container.resolve(TOKENS.hooks)).not.toBe(b.container.resolve(TOKENS.hooks));
    await Promise.all([a.close(), b.close()]);
  });

  it('releases every ONNX Runtime session on close', async () => {
    const w = await inlineWorker();
    const components = w.worker.componentsList;
    expect(components.map((c) => c.name).sort()).toEqual(['decoder', 'text_encoder', 'transformer']);
    expect(components.every((c) => c.isOpen)).toBe(true);
    await w.close();
    expect(components.every((c) => !c.isOpen)).toBe(true);
    expect(w.worker.state).toBe('closed');
    await expect(w.executeMethod('generate', [{ prompt: 'x' }])).rejects.toThrow(/closed/);
    expect(() => w.container.resolve(TOKENS.worker)).toThrow(/disposed/);
  });

  it('releases the sessions of a worker whose start fails', async () => {
    let opened: { isOpen: boolean }[] = [];
    await expect(inlineWorker({ workerExtensionClasses: ['./does-not-exist.ts#X'] }, {
      spy: () => ({ name: 'spy', apply: ({ hooks, worker }) => { hooks.afterLoadModel.tap('spy', () => { opened = worker.componentsList; }); } }),
    })).rejects.toThrow(/cannot import worker extension class module/);
    expect(opened.length).toBe(3);
    expect(opened.every((c) => !c.isOpen)).toBe(true);
  });
});
