import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfigFile, parseConfig } from '../core/config/load-config.ts';
import { inlineWorker } from './support/inline-worker.ts';

const dir = mkdtempSync(join(tmpdir(), 'omni-config-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('config', () => {
  it('fills defaults and resolves paths against the config file', () => {
    const c = loadConfigFile(file('ok.yaml', 'model: ./m\nmaxBatchSize: 4\n'));
    expect(c.maxBatchSize).toBe(4);
    expect(c.loadFormat).toBe('onnx');
    expect(c.device).toBe('cpu');
    expect(c.baseDir).toBe(dir);
  });

  it('names the path and the problem', () => {
    expect(() => parseConfig({ maxBatchSize: 0 })).toThrow(/maxBatchSize: .*>=1|maxBatchSize: Too small/);
    expect(() => parseConfig({ device: 'tpu' })).toThrow(/device: /);
    expect(() => parseConfig({ defaults: { steps: 2.5 } })).toThrow(/defaults\.steps: /);
    expect(() => parseConfig({ plugins: [{ name: 'a', module: './b.ts' }] })).toThrow(/plugins\[0\]: give exactly one of "name" or "module"/);
    expect(() => parseConfig({ maxBatchSise: 4 })).toThrow(/Unrecognized key.*maxBatchSise/);
  });

  it('reports unreadable and malformed files', () => {
    expect(() => loadConfigFile(join(dir, 'missing.yaml'))).toThrow(/cannot read config .*missing.yaml/);
    expect(() => loadConfigFile(file('bad.yaml', 'plugins: [unclosed\n'))).toThrow(/is not valid YAML/);
    expect(() => loadConfigFile(file('bad.json', '{"a":'))).toThrow(/is not valid JSON/);
  });

  it('reports unknown plugins, plugin modules and load formats when the worker starts', async () => {
    await expect(inlineWorker({ plugins: ['dummy-loader', 'no-such-plugin'] })).rejects.toThrow(/unknown plugin 'no-such-plugin' \(built-in: .*dummy-loader/);
    await expect(inlineWorker({ plugins: [{ module: './nowhere.ts' }] })).rejects.toThrow(/cannot import plugin module .*nowhere.ts/);
    await expect(inlineWorker({ loadFormat: 'gguf' })).rejects.toThrow(/unknown load format 'gguf' \(known: onnx, dummy\)/);
    await expect(inlineWorker({ loadOptions: { layers: 0 } })).rejects.toThrow(/dummy model: invalid loadOptions: layers: /);
    await expect(inlineWorker({ loadFormat: 'onnx', model: dir })).rejects.toThrow(/cannot read the model manifest .*model.json/);
  });
});
