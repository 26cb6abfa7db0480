import { describe, expect, it } from 'vitest';
import { TOKENS } from '../core/tokens.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';
import { createWorker, EMBEDDED_MODEL_DIR, withDefaultModel, type OmniWorker } from '../index.ts';
import { DEFAULT_SERVICES } from '../core/services.ts';
import { TextToImagePipeline } from '../core/pipeline/text-to-image.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import type { RolloutData } from '../core/protocol.ts';
import { definePlugin, type PluginApi } from '../core/plugin.ts';

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
    let sessions: PluginApi['sessions'] | undefined;
    let openAtLoad = 0;
    await expect(inlineWorker({ workerExtensionClasses: ['./does-not-exist.ts#X'] }, {
      spy: definePlugin({ name: 'spy', apply: (api) => { api.hooks.afterLoadModel.tap('spy', () => { sessions = api.sessions; openAtLoad = sessions.openCount; }); } }),
    })).rejects.toThrow(/cannot import worker extension class module/);
    expect(openAtLoad).toBe(3);
    expect(sessions!.total).toBe(3);
    expect(sessions!.openCount).toBe(0);
  });
});

describe('services swapped per worker', () => {
  const dummy = { loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1, executor: 'inline' } as const;

  it('takes the random seed of a request without one from the randomSeed service', async () => {
    const w = await createWorker(dummy, { services: { randomSeed: () => 1000 } });
    const r = await w.generate([{ prompt: 'a red circle', numOutputsPerPrompt: 2, steps: 1 }]);
    expect(r.nonTensorBatch.seed).toEqual([1000, 1001]);
    await w.close();
  });

  it('encodes prompts with the tokenizer service: one that ignores the text makes prompts alike', async () => {
    const requests = [{ prompt: 'a red circle', seed: 3, steps: 1 }, { prompt: 'a blue square', seed: 3, steps: 1 }];
    // The two samples' images, as bytes: [first, second].
    const images = async (w: OmniWorker) => {
      const { data } = (await w.generate(requests)).batch.responses!;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      await w.close();
      return [bytes.subarray(0, bytes.length / 2), bytes.subarray(bytes.length / 2)];
    };
    const differ = await images(await createWorker(dummy));
    expect(differ[0]).not.toEqual(differ[1]);
    const seen: string[] = [];
    const same = await images(await createWorker(dummy, {
      services: {
        tokenizer: (spec) => ({ maxLength: spec.maxLength, encode: (text) => { seen.push(text); return new BigInt64Array(spec.maxLength); } }),
      },
    }));
    expect(same[0]).toEqual(same[1]);
    expect(seen).toContain('a blue square');
  });

  it('starts a loaded model on the pipeline service', async () => {
    class Marked extends TextToImagePipeline {
      static override readonly pipelineName = 'marked';
    }
    const w = await createWorker(dummy, { services: { pipeline: Marked } });
    expect((await w.generate([{ prompt: 'x', seed: 0, steps: 1 }])).metaInfo.pipeline).toBe('marked');
    await w.close();
  });

  it('reads model folders with the modelFolder service', async () => {
    const dirs: string[] = [];
    const w = await createWorker({ executor: 'inline', threads: 1 }, {
      services: { modelFolder: (dir) => { dirs.push(dir); return DEFAULT_SERVICES.modelFolder(dir); } },
    });
    expect(dirs).toEqual([EMBEDDED_MODEL_DIR]);
    await w.close();
  });

  it('lets a plugin swap a service (api.overrideService) before the model loads', async () => {
    const w = await inlineWorker({}, {
      seeds: definePlugin({ name: 'seeds', apply: (api) => { api.overrideService('randomSeed', () => 7); } }),
    });
    const r = (await w.executeMethod('generate', [{ prompt: 'x', steps: 1 }])) as RolloutData;
    expect(r.nonTensorBatch.seed).toEqual([7]);
    await w.close();
  });

  it('refuses an unknown service, and services with the thread executor, before starting', async () => {
    await expect(createWorker(dummy, { services: { tokeniser: () => null } as never })).rejects.toThrow(/unknown service 'tokeniser' \(services: tokenizer, modelFolder, pipeline, randomSeed\)/);
    await expect(createWorker({ ...dummy, executor: 'thread' }, { services: { randomSeed: () => 1 } })).rejects.toThrow(/services \(randomSeed\) need executor 'inline', not 'thread'/);
  });
});

describe('the embedded model', () => {
  it('is an error naming its path when missing, never a silent stand-in', () => {
    const config = resolveConfig({});
    expect(() => withDefaultModel(config, '/nowhere/shapes-dit')).toThrow('/nowhere/shapes-dit/model.json does not exist');
    expect(withDefaultModel(config).model).toBe(EMBEDDED_MODEL_DIR);
    expect(withDefaultModel({ ...config, loadFormat: 'dummy' }, '/nowhere').model).toBeUndefined();
  });
});
