// plugins/custom-pipeline: a user pipeline class from the config, swapped at run time by
// reInitPipeline without touching weights, the old one disposed; modules only from allowlisted roots.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { definePlugin } from '../core/plugin.ts';
import type { RolloutData } from '../core/protocol.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { createWorker } from '../index.ts';
import { inlineWorker } from './support/inline-worker.ts';
import type { VelocityCapturePipeline } from '../examples/custom-pipeline/velocity-capture.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const INDEX = join(ROOT, 'index.ts');
const EXAMPLE = {
  name: 'custom-pipeline',
  options: { roots: ['examples/custom-pipeline'], pipeline: { module: 'examples/custom-pipeline/velocity-capture.ts', export: 'VelocityCapturePipeline' } },
};
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const REQ = [{ prompt: 'a red circle', seeds: [1, 2], steps: 3 }];

describe('custom pipeline from the config, swapped by reInitPipeline', () => {
  let w: WorkerWrapperBase;
  const velocities: Float32Array[] = [];
  const spy = definePlugin({
    name: 'spy',
    apply({ hooks }) { hooks.afterStep.tap('spy', (s) => { velocities.push(s.velocity.slice()); }); },
  });
  beforeAll(async () => { w = await inlineWorker({ baseDir: ROOT, plugins: ['dummy-loader', 'sde-scheduler', 'latent-capture', EXAMPLE, 'spy'] } as never, { spy }); });
  afterAll(async () => { await w.close(); });
  const generate = async () => {
    velocities.length = 0;
    return (await w.executeMethod('generate', REQ)) as RolloutData;
  };

  it('starts with the configured pipeline, whose extra output is every step velocity', async () => {
    const r = await generate();
    expect(r.metaInfo.pipeline).toBe('velocity-capture');
    const v = r.batch.velocities;
    expect(v.shape).toEqual([2, 3, 4, 8, 8]);
    const per = 4 * 8 * 8;
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 3; i++) {
        const got = (v.data as Float32Array).subarray((b * 3 + i) * per, (b * 3 + i + 1) * per);
        expect(bytes(got).equals(bytes(velocities[i].subarray(b * per, (b + 1) * per)))).toBe(true);
      }
    }
  });

  it('swaps pipelines without reloading weights or sessions, disposing the old one', async () => {
    const with_ = await generate();
    const model = w.worker.model;
    const reload = vi.spyOn(model.source, 'reloadWeights');
    const { components } = model;
    const transformerWeights = model.weights.get('transformer');
    const version = model.weights.version;
    const old = w.worker.runner.pipeline as VelocityCapturePipeline;
    expect(old.disposed).toBe(false);
    await expect(w.executeMethod('reInitPipeline', { pipelineClass: null })).resolves.toEqual({ pipeline: 'text-to-image', previous: 'velocity-capture' });
    expect(old.disposed).toBe(true);
    const plain = await generate();
    expect(plain.metaInfo.pipeline).toBe('text-to-image');
    expect(plain.batch.velocities).toBeUndefined();
    expect(bytes(plain.batch.latents_clean!.data).equals(bytes(with_.batch.latents_clean!.data))).toBe(true);
    expect(reload).not.toHaveBeenCalled();
    expect(w.worker.model.components).toBe(components);
    expect(components.transformer.isOpen).toBe(true);
    expect(model.weights.get('transformer')).toBe(transformerWeights);
    expect(model.weights.version).toBe(version);
    reload.mockRestore();
    // Back again, from the allowlisted root, with options; and scoring mode runs through it too.
    await w.executeMethod('reInitPipeline', { pipelineClass: 'examples/custom-pipeline/velocity-capture.ts#VelocityCapturePipeline', options: { key: 'v' } });
    const again = (await w.executeMethod('generate', [{ ...REQ[0], sde: { type: 'sde' }, capture: { latents: true, timesteps: true, logProbs: true } }])) as RolloutData;
    expect(again.batch.v.shape).toEqual([2, 3, 4, 8, 8]);
    expect(again.batch.all_latents!.shape).toEqual([2, 4, 4, 8, 8]);
  });

  it("refuses bad pipeline options in the class's own words, keeping the current pipeline", async () => {
    const before = w.worker.runner.pipeline;
    await expect(w.executeMethod('reInitPipeline', { pipelineClass: 'examples/custom-pipeline/velocity-capture.ts#VelocityCapturePipeline', options: { key: 'Bad Key' } }))
      .rejects.toThrow('velocity-capture: options.key must be a snake_case name, got "Bad Key"');
    expect(w.worker.runner.pipeline).toBe(before);
    await expect(w.executeMethod('reInitPipeline', { pipelineClass: null, module: '/etc/passwd' })).rejects.toThrow(/reInitPipeline: .*Unrecognized key.*module/);
    await expect(w.executeMethod('reInitPipeline', {})).rejects.toThrow(/reInitPipeline: invalid arguments: pipelineClass: /);
    expect((await generate()).batch.responses!.shape[0]).toBe(2);
  });

  it('lets a rollout in flight finish on the pipeline it started with', async () => {
    const old = w.worker.runner.pipeline as VelocityCapturePipeline;
    expect(old.disposed).toBe(false);
    const pending = w.executeMethod('generate', [{ prompt: 'a red circle', seed: 1, steps: 12 }]) as Promise<RolloutData>;
    const swapped = w.executeMethod('reInitPipeline', { pipelineClass: null });
    const r = await pending;
    expect(r.metaInfo.pipeline).toBe('velocity-capture');
    expect(r.batch.v.shape[1]).toBe(12);
    await expect(swapped).resolves.toMatchObject({ pipeline: 'text-to-image' });
    expect(old.disposed).toBe(true);
  });
});

describe('reInitPipeline module allowlist', () => {
  let dir: string;
  let w: WorkerWrapperBase;
  const pipelineModule = (name: string) => `import { TextToImagePipeline } from ${JSON.stringify(INDEX)};
export class P extends TextToImagePipeline { static override readonly pipelineName: string = ${JSON.stringify(name)}; }
export const notAPipeline = class {};
export class Boom extends P { static override readonly pipelineName: string = 'boom'; override dispose(): void { throw new Error('dispose boom'); } }
export class AsyncBoom extends P { static override readonly pipelineName: string = 'async-boom'; override async dispose(): Promise<void> { throw new Error('async dispose boom'); } }
`;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'omni-custom-pipeline-'));
    mkdirSync(join(dir, 'pipelines', 'nested'), { recursive: true });
    mkdirSync(join(dir, 'outside'));
    writeFileSync(join(dir, 'pipelines', 'nested', 'ok.ts'), pipelineModule('ok'));
    writeFileSync(join(dir, 'pipelines', 'data.json'), '{}');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }');
    writeFileSync(join(dir, 'pipelines', 'copy.ts'), 'class TextToImagePipeline {}\nexport class C extends TextToImagePipeline {}\n');
    writeFileSync(join(dir, 'outside', 'evil.ts'), pipelineModule('evil'));
    symlinkSync(join(dir, 'outside', 'evil.ts'), join(dir, 'pipelines', 'link.ts'));
    symlinkSync(join(dir, 'outside'), join(dir, 'pipelines', 'linkdir'));
    w = await inlineWorker({ baseDir: dir, plugins: ['dummy-loader', { name: 'custom-pipeline', options: { roots: ['pipelines'] } }] } as never);
  });
  afterAll(async () => {
    await w.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const reInit = (pipelineClass: string) => w.executeMethod('reInitPipeline', { pipelineClass });

  it('loads a module inside a root, relative or absolute', async () => {
    await expect(reInit('pipelines/nested/ok.ts#P')).resolves.toMatchObject({ pipeline: 'ok' });
    await expect(reInit(`${join(dir, 'pipelines', 'nested', 'ok.ts')}#P`)).resolves.toMatchObject({ pipeline: 'ok', previous: 'ok' });
    const r = (await w.executeMethod('generate', [{ prompt: 'x', seed: 1, steps: 2 }])) as RolloutData;
    expect(r.metaInfo.pipeline).toBe('ok');
  });

  it('refuses paths that leave the roots, and names what is wrong', async () => {
    const cases: [string, string | RegExp][] = [
      ['../outside/evil.ts#P', "pipelineClass: '..' is not allowed in paths ('../outside/evil.ts')"],
      ['pipelines/../outside/evil.ts#P', "'..' is not allowed in paths"],
      ['pipelines\\..\\outside\\evil.ts#P', "'..' is not allowed in paths"],
      [`${join(dir, 'outside', 'evil.ts')}#P`, `pipelineClass: '${join(dir, 'outside', 'evil.ts')}' is outside the allowed roots (${join(dir, 'pipelines')})`],
      // Relative to the config's folder but outside every root: not found under the roots, whether it exists or not.
      ['outside/evil.ts#P', `pipelineClass: no file 'outside/evil.ts' under the allowed roots (${join(dir, 'pipelines')})`],
      ['outside/missing.ts#P', "pipelineClass: no file 'outside/missing.ts' under the allowed roots"],
      ['pipelines/link.ts#P', /^pipelineClass: 'pipelines\/link\.ts' leads outside the allowed roots .* through a symlink \(it resolves to .*outside\/evil\.ts\)$/],
      ['pipelines/linkdir/evil.ts#P', 'through a symlink'],
      ['/etc/passwd.ts#P', "pipelineClass: '/etc/passwd.ts' is outside the allowed roots"],
      ['pipelines/missing.ts#P', "pipelineClass: no file 'pipelines/missing.ts' under the allowed roots"],
      ['pipelines/nested#P', "pipelineClass: 'pipelines/nested' is not a module (.ts, .mts, .js, .mjs)"],
      ['pipelines/data.json', "pipelineClass: 'pipelines/data.json' is not a module (.ts, .mts, .js, .mjs)"],
      ['pipelines/nested/ok.ts#Q', /has no export 'Q' \(exports: P, notAPipeline, Boom, AsyncBoom\)/],
      ['pipelines/nested/ok.ts#notAPipeline', "export 'notAPipeline' of"],
      ['pipelines/nested/ok.ts', "has no export 'default'"],
      ['pipelines/copy.ts#C', /export 'C' of .*copy\.ts extends a second copy of TextToImagePipeline, not the one this worker runs: it imports core from another copy of omni-worker/],
    ];
    for (const [ref, message] of cases) await expect(reInit(ref), ref).rejects.toThrow(message);
    // Still serving, on the last good pipeline.
    const r = (await w.executeMethod('generate', [{ prompt: 'x', seed: 1, steps: 2 }])) as RolloutData;
    expect(r.metaInfo.pipeline).toBe('ok');
  });

  it("stands by a swap whose old pipeline's dispose() fails, and reports it", async () => {
    const warnings: string[] = [];
    const listen = (e: { level: string; message: string }) => { if (e.level === 'warn') warnings.push(e.message); };
    w.events.on('log', listen);
    try {
      await reInit('pipelines/nested/ok.ts#Boom');
      await expect(reInit('pipelines/nested/ok.ts#AsyncBoom')).resolves.toEqual({
        pipeline: 'async-boom', previous: 'boom', disposeError: "the old pipeline 'boom' failed to dispose: dispose boom",
      });
      expect(((await w.executeMethod('generate', [{ prompt: 'x', seed: 1, steps: 2 }])) as RolloutData).metaInfo.pipeline).toBe('async-boom');
      await expect(reInit('pipelines/nested/ok.ts#P')).resolves.toEqual({
        pipeline: 'ok', previous: 'async-boom', disposeError: "the old pipeline 'async-boom' failed to dispose: async dispose boom",
      });
      expect(((await w.executeMethod('generate', [{ prompt: 'x', seed: 1, steps: 2 }])) as RolloutData).metaInfo.pipeline).toBe('ok');
      expect(warnings).toEqual([
        "pipeline swapped to 'async-boom'; the old pipeline 'boom' failed to dispose: dispose boom",
        "pipeline swapped to 'ok'; the old pipeline 'async-boom' failed to dispose: async dispose boom",
      ]);
      await expect(reInit('pipelines/nested/ok.ts#P')).resolves.toEqual({ pipeline: 'ok', previous: 'ok' }); // a clean dispose adds nothing
    } finally {
      w.events.off('log', listen);
    }
  });

  it('checks its config: roots must exist, the module must exist', async () => {
    await expect(inlineWorker({ baseDir: dir, plugins: ['dummy-loader', { name: 'custom-pipeline', options: { roots: ['nope'] } }] } as never))
      .rejects.toThrow(`plugin 'custom-pipeline': roots[0] 'nope' does not exist (resolved against ${dir})`);
    await expect(inlineWorker({ baseDir: dir, plugins: ['dummy-loader', { name: 'custom-pipeline', options: { pipeline: { module: 'gone.ts' } } }] } as never))
      .rejects.toThrow("plugin 'custom-pipeline': pipeline.module 'gone.ts' does not exist");
    await expect(inlineWorker({ baseDir: dir, plugins: ['dummy-loader', { name: 'custom-pipeline', options: { root: ['x'] } }] } as never))
      .rejects.toThrow(/plugin 'custom-pipeline': invalid options: \(root\): Unrecognized key.*root/);
  });
});

describe('in a worker thread (Node and tsx, as in production)', () => {
  it('imports an edited pipeline module afresh', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-hot-pipeline-'));
    const file = join(dir, 'hot.mts'); // .mts: ESM wherever the folder is
    const source = (name: string) => `import { TextToImagePipeline } from ${JSON.stringify(INDEX)};
export class Hot extends TextToImagePipeline { static override readonly pipelineName: string = ${JSON.stringify(name)}; }\n`;
    writeFileSync(file, source('hot-1'));
    const worker = await createWorker({ baseDir: dir, loadFormat: 'dummy', loadOptions: { height: 8, width: 8 }, threads: 1, plugins: ['dummy-loader', { name: 'custom-pipeline', options: { roots: ['.'] } }] } as never);
    try {
      await expect(worker.executeMethod('reInitPipeline', { pipelineClass: 'hot.mts#Hot' })).resolves.toMatchObject({ pipeline: 'hot-1' });
      writeFileSync(file, source('hot-2'));
      utimesSync(file, new Date(), new Date(Date.now() + 5000));
      await expect(worker.executeMethod('reInitPipeline', { pipelineClass: 'hot.mts#Hot' })).resolves.toEqual({ pipeline: 'hot-2', previous: 'hot-1' });
      expect((await worker.generate([{ prompt: 'x', seed: 1, steps: 1 }])).metaInfo.pipeline).toBe('hot-2');
    } finally {
      await worker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the cause when a .ts module outside a "type": "module" package is loaded as CommonJS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-cjs-pipeline-'));
    const source = `import { TextToImagePipeline } from ${JSON.stringify(INDEX)};
export class P extends TextToImagePipeline { static override readonly pipelineName: string = 'p'; }\n`;
    for (const [sub, type] of [['cjs', 'commonjs'], ['esm', 'module']]) {
      mkdirSync(join(dir, sub));
      writeFileSync(join(dir, sub, 'package.json'), JSON.stringify({ type }));
      writeFileSync(join(dir, sub, 'p.ts'), source);
    }
    const worker = await createWorker({ baseDir: dir, loadFormat: 'dummy', loadOptions: { height: 8, width: 8 }, threads: 1, plugins: ['dummy-loader', { name: 'custom-pipeline', options: { roots: ['.'] } }] } as never);
    try {
      // Node (and tsx's ESM hooks) load it as CommonJS: its TypeScript is not even compiled.
      await expect(worker.executeMethod('reInitPipeline', { pipelineClass: 'cjs/p.ts#P' })).rejects.toThrow(
        `. Node loaded it as CommonJS (its package.json (${join(dir, 'cjs', 'package.json')}) has no "type": "module"); ` +
        'name it .mts, or put it in a package with "type": "module"');
      await expect(worker.executeMethod('reInitPipeline', { pipelineClass: 'esm/p.ts#P' })).resolves.toMatchObject({ pipeline: 'p' });
    } finally {
      await worker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the velocity-capture pipeline and swaps it by executeMethod', async () => {
    const worker = await createWorker(join(ROOT, 'examples/custom-pipeline/worker-config.yaml'));
    try {
      const r = await worker.generate([{ prompt: 'a red circle', seed: 1, steps: 2 }]);
      expect(r.batch.velocities.shape).toEqual([1, 2, 3, 32, 32]); // the embedded model's latents
      await worker.executeMethod('reInitPipeline', { pipelineClass: null });
      expect((await worker.generate([{ prompt: 'a red circle', seed: 1, steps: 2 }])).batch.velocities).toBeUndefined();
      await worker.executeMethod('reInitPipeline', { pipelineClass: 'velocity-capture.ts#VelocityCapturePipeline', options: { key: 'v' } });
      expect((await worker.generate([{ prompt: 'a red circle', seed: 1, steps: 2 }])).batch.v.shape).toEqual([1, 2, 3, 32, 32]);
    } finally {
      await worker.close();
    }
  });
});
