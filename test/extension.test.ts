import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { createWorker } from '../index.ts';
import { loadConfigFile } from '../core/config/load-config.ts';
import { inlineWorker } from './support/inline-worker.ts';

const examples = fileURLToPath(new URL('../examples/', import.meta.url));

describe('worker extension classes and user plugins', () => {
  it('runs the example config in a worker thread: extension methods and plugin methods by name', async () => {
    const w = await createWorker(loadConfigFile(`${examples}worker-config.yaml`));
    try {
      const methods = (await w.executeMethod('listMethods')) as string[];
      expect(methods).toEqual(expect.arrayContaining(['generate', 'reportWeights', 'meanPixel', 'stepsSeen']));
      expect(methods).not.toContain('_helper');
      const report = (await w.executeMethod('reportWeights')) as { weightsVersion: number; components: Record<string, number> };
      expect(report.weightsVersion).toBe(0);
      expect(report.components.transformer).toBeGreaterThan(0);
      const means = (await w.executeMethod('meanPixel', 'a red circle', 3, 5)) as number[];
      expect(means).toHaveLength(3);
      expect(await w.executeMethod('stepsSeen')).toBe(6);
      const [viaRpc] = await w.collectiveRpc('meanPixel', ['a red circle', 3, 5]);
      expect(viaRpc).toEqual(means);
      await expect(w.executeMethod('nope')).rejects.toThrow(/unknown method 'nope' \(known: .*meanPixel/);
    } finally {
      await w.close();
    }
  });

  it('refuses an extension method that clashes, naming both definitions', async () => {
    await expect(inlineWorker({ workerExtensionClasses: [`${examples}rl-extension.ts#ClashingExtension`] }))
      .rejects.toThrow(/method 'generate' of extension ClashingExtension \(.*rl-extension.ts#ClashingExtension\) clashes with 'generate' declared by core/);
    await expect(inlineWorker({ workerExtensionClasses: [`${examples}rl-extension.ts#RlExtension`, `${examples}rl-extension.ts#RlExtension`] }))
      .rejects.toThrow(/method 'reportWeights' of extension RlExtension .* clashes with 'reportWeights' declared by extension RlExtension/);
  });

  it('removing a plugin from the list removes its methods and nothing else', async () => {
    const config = loadConfigFile(`${examples}worker-config.yaml`);
    const w = await inlineWorker({ baseDir: config.baseDir, workerExtensionClasses: config.workerExtensionClasses, plugins: ['dummy-loader'] } as never);
    const methods = (await w.executeMethod('listMethods')) as string[];
    expect(methods).not.toContain('stepsSeen');
    expect(methods).toContain('meanPixel');
    await w.close();
  });
});
