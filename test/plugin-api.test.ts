// The plugin API as a product surface: what a plugin declares (one registry, one clash rule),
// what it depends on, how its options are checked, and what PluginApi hands out.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { definePlugin, type PluginApi } from '../core/plugin.ts';
import { inlineWorker } from './support/inline-worker.ts';

const REQUEST = { prompt: 'a red circle', seed: 1, steps: 2 };

describe('plugin api', () => {
  it('hands out hooks, events, declarations, weights and named capabilities, not the worker', async () => {
    let api: PluginApi | undefined;
    const probe = definePlugin({ name: 'probe', apply(a) { api = a; } });
    const w = await inlineWorker({ plugins: ['dummy-loader', 'probe'] }, { probe });
    try {
      expect(Object.keys(api!).sort()).toEqual([
        'argsOwned', 'baseDir', 'declare', 'declared', 'drainRollouts', 'events', 'hooks', 'model', 'name', 'overrideService', 'pipeline', 'runInFlight', 'sessions', 'state', 'weights',
      ]);
      expect(Object.isFrozen(api)).toBe(true);
      expect(api!.weights).toBe(w.worker.weights);
      expect(api!.pipeline.current).toBe(w.worker.runner.pipeline);
      expect(Object.keys(api!.model).sort()).toEqual(['source', 'spec', 'tokenizer']);
      expect(api!.sessions).toMatchObject({ openCount: 3, total: 3 });
      expect(api!.argsOwned).toBe(false); // inline: arguments are the caller's objects
    } finally {
      await w.close();
    }
  });

  it('keeps every kind of declaration in one registry with one clash rule naming both owners', async () => {
    const cases: [string, (api: PluginApi) => void, RegExp][] = [
      ['method', (a) => a.declare.method('generate', (() => 1) as never), /^method 'generate' of plugin 'second' clashes with 'generate' declared by core$/],
      ['request key', (a) => a.declare.requestKey('seed'), /^request key 'seed' of plugin 'second' clashes with 'seed' declared by core$/],
      ['load format', (a) => a.declare.loadFormat('dummy'), /^load format 'dummy' of plugin 'second' clashes with 'dummy' declared by plugin 'dummy-loader'$/],
      ['worker state', (a) => a.declare.state('ready'), /^worker state 'ready' of plugin 'second' clashes with 'ready' declared by core$/],
      ['wakeUp tag', (a) => a.declare.wakeTag('sessions'), /^wakeUp tag 'sessions' of plugin 'second' clashes with 'sessions' declared by plugin 'sleep-mode'$/],
    ];
    for (const [, declare, error] of cases) {
      const second = definePlugin({ name: 'second', apply: declare });
      await expect(inlineWorker({ plugins: ['dummy-loader', 'sleep-mode', 'second'] }, { second })).rejects.toThrow(error);
    }
  });

  it('checks dependencies before any plugin applies, naming what is missing', async () => {
    let applied = false;
    const first = definePlugin({ name: 'first', apply() { applied = true; } });
    await expect(inlineWorker({ plugins: ['first', 'dummy-loader', 'latent-capture'] }, { first }))
      .rejects.toThrow("plugin 'latent-capture' needs 'sde-scheduler', missing from the plugin list (first, dummy-loader, latent-capture)");
    expect(applied).toBe(false);
  });

  it('validates options with the plugin schema in one format, before any plugin applies', async () => {
    let applied = false;
    let seen: unknown;
    const first = definePlugin({ name: 'first', apply() { applied = true; } });
    const typed = definePlugin({
      name: 'typed',
      optionsSchema: z.object({ every: z.number().int().positive().default(3), tags: z.array(z.string()).default([]) }).strict(),
      apply(_api, options) { seen = options; },
    });
    await expect(inlineWorker({ plugins: ['first', 'dummy-loader', { name: 'typed', options: { tags: ['a', 4] } }] }, { first, typed }))
      .rejects.toThrow(/^plugin 'typed': invalid options: tags\[1\]: Invalid input: expected string, received number$/);
    await expect(inlineWorker({ plugins: ['first', 'dummy-loader', { name: 'lora', options: { roots: 'x' } }] }, { first }))
      .rejects.toThrow(/^plugin 'lora': invalid options: roots: /);
    await expect(inlineWorker({ plugins: ['dummy-loader', { name: 'first', options: { x: 1 } }] }, { first }))
      .rejects.toThrow("plugin 'first': invalid options: it takes none, got x");
    expect(applied).toBe(false);
    const w = await inlineWorker({ plugins: ['dummy-loader', { name: 'typed', options: { tags: ['a'] } }] }, { typed });
    expect(seen).toEqual({ every: 3, tags: ['a'] }); // defaults filled in by the schema
    await w.close();
  });

  it('refuses a plugin listed twice, and a module that exports no plugin definition', async () => {
    await expect(inlineWorker({ plugins: ['dummy-loader', 'lora', 'lora'] })).rejects.toThrow("plugin 'lora' is listed twice (entries 1 and 2 of the plugin list)");
    await expect(inlineWorker({ plugins: ['dummy-loader', { module: 'test/plugin-api.test.ts', export: 'NOT_A_PLUGIN' }], baseDir: process.cwd() } as never))
      .rejects.toThrow(/plugin module test\/plugin-api\.test\.ts must export a plugin definition \{ name, apply\(api, options\) \}/);
  });

  it('lets a plugin set only the states it declared (or ready)', async () => {
    const rogue = definePlugin({ name: 'rogue', apply(api) { api.declare.method('pause', () => api.state.set('sleeping' as never)); } });
    const w = await inlineWorker({ plugins: ['dummy-loader', 'rogue'] }, { rogue });
    try {
      await expect(w.executeMethod('pause')).rejects.toThrow("plugin 'rogue' sets worker state 'sleeping', which it has not declared (api.declare.state)");
      expect(w.worker.state).toBe('ready');
    } finally {
      await w.close();
    }
  });

  it("answers a load format through its own keyed hook, and says when the declared format's loaders give nothing", async () => {
    const lazy = definePlugin({ name: 'lazy', apply(api) { api.declare.loadFormat('gguf'); } });
    await expect(inlineWorker({ plugins: ['dummy-loader', 'lazy'], loadFormat: 'gguf' }, { lazy }))
      .rejects.toThrow("load format 'gguf' (declared by plugin 'lazy') gave no model: no loader tapped hooks.loadModel.for('gguf') answered");
  });
});

describe('rollout vocabulary', () => {
  it('gives each batch one id, shared by its step and batchDone events and unique across calls', async () => {
    const w = await inlineWorker({ plugins: ['dummy-loader'] });
    try {
      const steps: number[] = [];
      const done: number[] = [];
      w.events.on('step', (e) => steps.push(e.batchId));
      w.events.on('batchDone', (e) => done.push(e.batchId));
      // Two batches in the first call (different step counts), one in the second.
      await w.executeMethod('generate', [REQUEST, { ...REQUEST, steps: 1 }]);
      await w.executeMethod('generate', [REQUEST]);
      expect(new Set(done).size).toBe(3);
      expect(steps).toEqual([done[0], done[0], done[1], done[2], done[2]]);
    } finally {
      await w.close();
    }
  });

  it('stamps the sde vocabulary only when the sde plugin is loaded', async () => {
    const bare = await inlineWorker({ plugins: ['dummy-loader'] });
    const sde = await inlineWorker({ plugins: ['dummy-loader', 'sde-scheduler'] });
    try {
      const a = (await bare.executeMethod('generate', [REQUEST])) as { metaInfo: Record<string, unknown> };
      const b = (await sde.executeMethod('generate', [REQUEST])) as { metaInfo: Record<string, unknown> };
      expect(Object.keys(a.metaInfo).filter((k) => k.includes('sde') || k.includes('noise'))).toEqual([]);
      expect(b.metaInfo).toMatchObject({ sde_type: 'ode', noise_level: 0 });
    } finally {
      await Promise.all([bare.close(), sde.close()]);
    }
  });
});

export const NOT_A_PLUGIN = () => ({ name: 'factory', apply() {} });
