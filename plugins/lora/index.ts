// plugins/lora: PEFT LoRA adapters merged into the transformer's weights per batch.
//   addLora({ name, path } | { name, config, tensors }, pinned?, replace?, mergeScales?)  removeLora(name)
//   listLoras()  pinLora(name)  unpinLora(name)
//   per request: lora: { name, scale = 1 } (or just the name)
// Options: roots (folders adapters may be loaded from, core's PathAllowlist; none: paths are off), budgetBytes
// (adapters plus cached merged weights). Requests with different adapters never share a batch
// (core batches by plugin options), so each batch runs one merged weight map.
import { z } from 'zod';
import { definePlugin, PathAllowlist, refuseUnknownArguments, showValue, tapOptions } from '../../core/public.ts';
import { buildAdapter } from './adapter.ts';
import { readAdapterFolder, readAdapterMemory } from './load.ts';
import { parseLoraConfig } from './peft-config.ts';
import { AdapterRegistry, type AdapterInfo } from './registry.ts';

export const PLUGIN_NAME = 'lora';

declare module '../../core/public.ts' {
  interface RolloutMetaKeys {
    /** The adapter the batch ran with (per sample in non_tensor_batch when a call mixes them). */
    lora?: { name: string; scale: number };
  }
  interface GenerateRequest {
    /** The adapter this request runs with: its name, or { name, scale = 1 }. */
    lora?: string | { name: string; scale?: number } | null;
  }
  interface OmniWorkerMethods {
    addLora(args: AddLoraArgs): AddLoraResult;
    /** Returns the adapters still loaded. */
    removeLora(name: string): string[];
    pinLora(name: string): boolean;
    unpinLora(name: string): boolean;
    listLoras(): LoraListing;
  }
}

export type AddLoraResult = AdapterInfo & { evicted: string[] };

export interface LoraListing {
  adapters: AdapterInfo[];
  budgetBytes: number;
  usedBytes: number;
  mergedBytes: number;
}

const optionsSchema = z.object({
  roots: z.array(z.string().min(1)).default([]),
  budgetBytes: z.number().int().positive().default(2 ** 30),
  /** Largest |scale| a request or mergeScales may ask: beyond it merged weights blow activations up to NaN. */
  maxScale: z.number().finite().positive().default(10),
}).strict();

const ADD_ARG_KEYS: readonly (keyof AddLoraArgs)[] = ['name', 'path', 'config', 'tensors', 'pinned', 'replace', 'mergeScales'];

/** removeLora / pinLora / unpinLora take the adapter's name itself. */
function adapterName(method: string, name: unknown): string {
  if (typeof name !== 'string' || !name) throw new Error(`${method}: takes the adapter's name (a non-empty string), got ${showValue(name)}`);
  return name;
}

export interface AddLoraArgs {
  name: string;
  /** A PEFT adapter folder under one of the roots ... */
  path?: string;
  /** ... or the adapter_config.json fields and the tensors (named, or safetensors bytes). */
  config?: Record<string, unknown>;
  tensors?: unknown;
  pinned?: boolean;
  /** Replace a loaded adapter of the same name (a trainer's new step). */
  replace?: boolean;
  /**
   * Scales to merge now, off the request path (default [1]): a request at a merged scale then
   * switches adapters by a lookup. Other scales are merged on first use.
   */
  mergeScales?: number[];
}

/** A request's lora option: { name, scale = 1 } or the name alone; |scale| <= maxScale. */
export function parseRequestLora(v: unknown, requestIndex: number, maxScale: number): { name: string; scale: number } {
  if (typeof v === 'string' && v) return { name: v, scale: 1 };
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const { name, scale = 1, ...rest } = v as Record<string, unknown>;
    if (typeof name === 'string' && name && typeof scale === 'number' && Number.isFinite(scale) && !Object.keys(rest).length) {
      if (Math.abs(scale) > maxScale) throw new Error(`request ${requestIndex}: lora.scale ${scale} is beyond +-${maxScale} (the lora plugin's maxScale option)`);
      return { name, scale };
    }
  }
  throw new Error(`request ${requestIndex}: lora must be { name: string, scale?: finite number } or an adapter name, got ${showValue(v)}`);
}

export default definePlugin({
  name: PLUGIN_NAME,
  optionsSchema,
  async apply(api, options) {
    const allow = await PathAllowlist.open(options.roots, `plugin '${PLUGIN_NAME}'`, { baseDir: api.baseDir });
    const registry = new AdapterRegistry(options.budgetBytes);
    api.declare.requestKey('lora');
    const store = api.weights;

    api.declare.method('addLora', async (args: AddLoraArgs): Promise<AddLoraResult> => {
      if (args === null || typeof args !== 'object') throw new Error('addLora needs { name, path } or { name, config, tensors }');
      // A misspelt `pinned` would leave the adapter evictable.
      refuseUnknownArguments('addLora', args, ADD_ARG_KEYS);
      const { name, path, config, tensors, pinned, replace, mergeScales = [1] } = args;
      if (typeof name !== 'string' || !name) throw new Error('addLora: name must be a non-empty string');
      if (!Array.isArray(mergeScales) || !mergeScales.every((x) => Number.isFinite(x) && Math.abs(x) <= options.maxScale)) {
        throw new Error(`addLora '${name}': mergeScales must be an array of numbers within +-${options.maxScale} (the maxScale option), got ${JSON.stringify(mergeScales)}`);
      }
      if ((path === undefined) === (tensors === undefined)) throw new Error(`addLora '${name}': give exactly one of path or tensors`);
      if (path !== undefined && config !== undefined) throw new Error(`addLora '${name}': with a path, the config is the folder's adapter_config.json`);
      if (registry.has(name) && !replace) throw new Error(`addLora: an adapter named '${name}' is loaded; removeLora it first or pass replace: true`);
      const files = path !== undefined ? await readAdapterFolder(allow, path) : readAdapterMemory(config, tensors);
      const where = `adapter '${name}' (${files.origin})`;
      const adapter = buildAdapter(name, parseLoraConfig(files.config, where), files.tensors, store.parameters('transformer')!, files.origin);
      const evicted = registry.add(adapter, { pinned, replace });
      const base = store.get('transformer');
      // With session residency each merged map is a session: built here, off the request path.
      if (base) for (const scale of mergeScales) await store.prepare({ transformer: registry.merged(name, scale, base) });
      return { ...registry.list().find((a) => a.name === name)!, evicted };
    });
    api.declare.method('removeLora', (name: string) => { registry.remove(adapterName('removeLora', name)); return registry.names(); });
    api.declare.method('pinLora', (name: string) => { registry.pin(adapterName('pinLora', name), true); return true; });
    api.declare.method('unpinLora', (name: string) => { registry.pin(adapterName('unpinLora', name), false); return false; });
    api.declare.method('listLoras', (): LoraListing => ({
      adapters: registry.list(), budgetBytes: registry.budgetBytes, usedBytes: registry.usedBytes, mergedBytes: registry.mergedBytes,
    }));

    // Every batch's option checked while the call is planned, before any batch merges or runs.
    api.hooks.planOutputs.tap(PLUGIN_NAME, (outputs, batch) => {
      const first = batch.samples[0];
      if (first.request.lora === undefined || first.request.lora === null) return outputs;
      const { name } = parseRequestLora(first.request.lora, first.requestIndex, options.maxScale);
      registry.assertLoaded(name, `request ${first.requestIndex}: lora`);
      return outputs;
    });
    // After sleep-mode's 'pre' check: an asleep worker refuses before any merge.
    api.hooks.beforeExecute.tap(PLUGIN_NAME, (ctx) => {
      const first = ctx.samples[0];
      const option = first?.request.lora;
      if (option === undefined || option === null) return;
      const { name, scale } = parseRequestLora(option, first.requestIndex, options.maxScale);
      const base = ctx.weights.transformer;
      if (!base) throw new Error('lora: the transformer weights are not loaded');
      const transformer = registry.merged(name, scale, base);
      ctx.weights = { ...ctx.weights, transformer };
      ctx.meta.lora = { name, scale };
    });

    // Merged maps derive from the base weights: a new transformer, or none, makes them stale.
    store.onChange((changed) => { if (changed.includes('transformer')) registry.clearMerged(); });
    api.hooks.sleep.tap(tapOptions(PLUGIN_NAME), (report) => {
      if (report.level < 2 || registry.mergedBytes === 0) return report;
      const freed = registry.clearMerged();
      return { ...report, freedBytes: report.freedBytes + freed, released: [...report.released, 'lora merged weights'] };
    });
  },
});
