// plugins/custom-pipeline: runs a user pipeline class (a TextToImagePipeline subclass that may
// override any stage and add outputs) named in the config, and swaps it at run time:
// RPC reInitPipeline({ pipelineClass: 'path/to/module.ts#Export' | null, options }). Weights and
// sessions stay; the old pipeline is disposed. Run-time modules come only from allowlisted roots
// (core's PathAllowlist: relative paths under a root or the config's folder, never outside a root).
// Config options: { roots: string[], pipeline?: { module, export, options } }.
import { extname, resolve } from 'node:path';
import { realpathSync } from 'node:fs';
import { z } from 'zod';
import { PathAllowlist, TextToImagePipeline, definePlugin, parseModuleRef, parseOrThrow, type PipelineClass } from '../../core/public.ts';
import { loadPipelineClass } from './load-class.ts';

export const PLUGIN_NAME = 'custom-pipeline';
const MODULE_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

const optionsSchema = z.object({
  /** Folders (relative to the config) from which reInitPipeline may load modules. */
  roots: z.array(z.string().min(1)).default([]),
  /** The pipeline to start with. */
  pipeline: z.object({
    module: z.string().min(1),
    export: z.string().min(1).default('default'),
    options: z.record(z.string(), z.unknown()).default({}),
  }).strict().optional(),
}).strict();

const reInitSchema = z.object({
  /** "path/to/module.ts#Export" (relative to the config, inside a root), or null for the built-in pipeline. */
  pipelineClass: z.string().min(1).nullable(),
  options: z.record(z.string(), z.unknown()).default({}),
}).strict();

declare module '../../core/public.ts' {
  interface OmniWorkerMethods {
    /** Swaps the pipeline class; weights and sessions stay. */
    reInitPipeline(args: ReInitArgs): ReInitResult;
  }
}

export type ReInitArgs = z.input<typeof reInitSchema>;

export interface ReInitResult {
  /** pipelineName of the new and of the old pipeline. */
  pipeline: string;
  previous: string;
  /** The old pipeline's dispose() failed; the swap stands (the new pipeline serves). */
  disposeError?: string;
}

export default definePlugin({
  name: PLUGIN_NAME,
  optionsSchema,
  async apply(api, { roots: rootPaths, pipeline }) {
    const { baseDir, hooks } = api;
    // The config's module is trusted as written (the config is); imported now, so a bad one stops the start.
    const trusted: string[] = [];
    let initial: PipelineClass | undefined;
    if (pipeline) {
      const { path, exportName } = parseModuleRef(pipeline.module, pipeline.export);
      let real: string;
      try {
        real = realpathSync(resolve(baseDir, path));
      } catch {
        throw new Error(`plugin '${PLUGIN_NAME}': pipeline.module '${path}' does not exist (resolved against ${baseDir})`);
      }
      trusted.push(resolve(baseDir, path), real);
      initial = await loadPipelineClass(real, exportName);
    }
    const allow = await PathAllowlist.open(rootPaths, `plugin '${PLUGIN_NAME}'`, { baseDir, trusted });
    if (initial) hooks.afterLoadModel.tapPromise(PLUGIN_NAME, async () => { await api.pipeline.swap(initial!, pipeline!.options); });

    api.declare.method('reInitPipeline', async (raw: ReInitArgs): Promise<ReInitResult> => {
      const args = parseOrThrow(reInitSchema, raw, 'reInitPipeline', 'arguments');
      let cls: PipelineClass = TextToImagePipeline;
      if (args.pipelineClass !== null) {
        const { path, exportName } = parseModuleRef(args.pipelineClass);
        if (!MODULE_EXTENSIONS.includes(extname(path))) throw new Error(`pipelineClass: '${path}' is not a module (${MODULE_EXTENSIONS.join(', ')})`);
        cls = await loadPipelineClass(await allow.resolve(path, 'file', 'pipelineClass'), exportName);
      }
      // Rollouts in flight finish on the pipeline they started with.
      while (await api.drainRollouts('wait') > 0);
      const { previous, disposeError } = await api.pipeline.swap(cls, args.options);
      return { pipeline: (cls as unknown as typeof TextToImagePipeline).pipelineName, previous, ...(disposeError ? { disposeError } : {}) };
    });
  },
});
