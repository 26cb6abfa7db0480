// plugins/weight-sync: weights from a trainer by PyTorch parameter name (docs/weight-lifecycle.md).
//   loadWeights({ component = 'transformer', source, bucket = false })
//   finishWeightUpdate()   commits every staged bucket at once (one version bump)
//   abortWeightUpdate()    drops the staged buckets
// An upload (`upload: id`, the HTTP route's body staged piece by piece as it arrives) has staging
// of its own: finishWeightUpdate({ upload }) commits it alone (or, with bucket, adds it to the
// buckets), abortWeightUpdate({ upload }) drops it; neither touches the other's tensors.
// A bad update (unknown name, wrong shape, unsupported dtype, malformed file) is an error and
// changes nothing; staged buckets stay until finishWeightUpdate or abortWeightUpdate.
import { COMPONENT_NAMES, definePlugin, refuseUnknownArguments, type ComponentName, type WeightSet, type WeightStore } from '../../core/public.ts';
import { checkAndConvert } from './convert.ts';
import { readWeightSource, type WeightSource } from './read-source.ts';
import { buildMaps, WeightStaging } from './staging.ts';

export const PLUGIN_NAME = 'weight-sync';

declare module '../../core/public.ts' {
  interface OmniWorkerMethods {
    /** Loads (or, with bucket, stages) a component's weights by PyTorch name. */
    loadWeights(args: LoadWeightsArgs, options?: { bucket?: boolean }): LoadWeightsResult;
    /** Commits every staged bucket at once: one version bump. */
    finishWeightUpdate(args?: UploadArgs): FinishWeightUpdateResult;
    /** Drops the staged buckets (or, with `upload`, that upload's tensors only). */
    abortWeightUpdate(args?: UploadArgs): { dropped: number; weightsVersion: number };
  }
}

export interface FinishWeightUpdateResult {
  weightsVersion: number;
  /** Tensors committed per component. */
  committed: Partial<Record<ComponentName, number>>;
  tensors: number;
  /** Tensors still waiting for a finishWeightUpdate, all components. */
  stagedTensors: number;
}

/** Closes one upload instead of the buckets: commit it (or add it to the buckets, with bucket), or drop it. */
export interface UploadArgs {
  upload?: string;
  bucket?: boolean;
}

export interface LoadWeightsArgs {
  /** 'transformer' by default. */
  component?: ComponentName;
  /** A .safetensors path, .safetensors bytes, or named tensors { dtype, shape, data }. */
  source: WeightSource;
  /** Stage this bucket; finishWeightUpdate commits all staged buckets together. */
  bucket?: boolean;
  /** Stage into this upload's own staging (closed by finishWeightUpdate/abortWeightUpdate({ upload })). */
  upload?: string;
}

export interface LoadWeightsResult {
  /** The version now serving (unchanged by a staged bucket). */
  weightsVersion: number;
  component: ComponentName;
  tensors: number;
  bytes: number;
  staged: boolean;
  /** Tensors waiting for finishWeightUpdate, all components. */
  stagedTensors: number;
}

// A misspelt key would be dropped: `buckt: true` would commit a bucket at once instead of staging it.
const ARG_KEYS: readonly (keyof LoadWeightsArgs)[] = ['component', 'source', 'bucket', 'upload'];
const UPLOAD_KEYS: readonly (keyof UploadArgs)[] = ['upload', 'bucket'];

function uploadOf(method: string, args: unknown): string | undefined {
  if (args === undefined) return undefined;
  if (args === null || typeof args !== 'object') throw new Error(`${method} takes no arguments or { upload, bucket? }`);
  refuseUnknownArguments(method, args, UPLOAD_KEYS);
  const { upload } = args as UploadArgs;
  if (upload !== undefined && (typeof upload !== 'string' || !upload)) throw new Error(`${method}: upload must be a non-empty string, not ${JSON.stringify(upload)}`);
  return upload;
}

function componentOf(store: WeightStore, value: unknown): ComponentName {
  const component = value ?? 'transformer';
  if (typeof component !== 'string' || !(COMPONENT_NAMES as readonly string[]).includes(component)) {
    throw new Error(`loadWeights: unknown component ${JSON.stringify(component)} (known: ${COMPONENT_NAMES.join(', ')})`);
  }
  if (!store.parameters(component as ComponentName)) {
    throw new Error(`loadWeights: this model has no ${component} (it has: ${store.components.join(', ')})`);
  }
  return component as ComponentName;
}

export default definePlugin({
  name: PLUGIN_NAME,
  apply(api) {
    const store = api.weights;
    const staging = new WeightStaging();
    const uploads = new Map<string, WeightStaging>();
    // One commit at a time: maps are built from the serving ones, and readying them (session
    // residency builds sessions) awaits, so a second commit meanwhile would build on stale maps.
    let commits: Promise<unknown> = Promise.resolve();
    function serially<T>(commit: () => Promise<T>): Promise<T> {
      const done = commits.then(commit);
      commits = done.catch(() => undefined);
      return done;
    }
    async function swapIn(maps: WeightSet): Promise<number> {
      await store.prepare(maps);
      return store.replace(maps);
    }

    api.declare.method('loadWeights', async (args: LoadWeightsArgs, options: { bucket?: boolean } = {}): Promise<LoadWeightsResult> => {
      if (args === null || typeof args !== 'object') throw new Error('loadWeights needs { component?, source, bucket? }');
      refuseUnknownArguments('loadWeights', args, ARG_KEYS);
      const component = componentOf(store, args.component);
      const bucket = Boolean(args.bucket ?? options?.bucket);
      const upload = uploadOf('loadWeights', args.upload === undefined ? undefined : { upload: args.upload });
      if (upload !== undefined && bucket) throw new Error('loadWeights: an upload is staged whole; pass bucket to finishWeightUpdate({ upload, bucket }), not with each piece');
      const read = await readWeightSource(args.source);
      // Arguments that are the method's own (a structured clone) need no second copy.
      if (api.argsOwned) read.owned = true;
      const update = checkAndConvert(component, store.parameters(component)!, read);
      let bytes = 0;
      for (const t of update.values()) bytes += t.data.byteLength;
      let weightsVersion = store.version;
      if (upload !== undefined) {
        const own = uploads.get(upload) ?? new WeightStaging();
        own.stage(component, update);
        uploads.set(upload, own);
      } else if (bucket) staging.stage(component, update);
      else weightsVersion = await serially(() => swapIn(buildMaps(store, new Map([[component, update]]))));
      return { weightsVersion, component, tensors: update.size, bytes, staged: bucket || upload !== undefined, stagedTensors: staging.size };
    });

    api.declare.method('finishWeightUpdate', (args?: UploadArgs): Promise<FinishWeightUpdateResult> => {
      const upload = uploadOf('finishWeightUpdate', args);
      // An upload leaves the map now: pieces arriving later (none should) start a new one.
      const from = upload === undefined ? staging : uploads.get(upload) ?? new WeightStaging();
      if (upload !== undefined) uploads.delete(upload);
      if (upload !== undefined && args?.bucket) {
        const committed = from.summary();
        const tensors = from.size;
        staging.absorb(from);
        return Promise.resolve({ weightsVersion: store.version, committed, tensors, stagedTensors: staging.size });
      }
      return serially(async () => {
        const committed = from.summary();
        const tensors = from.size;
        // Nothing staged: a no-op that reports the version serving (not an error, so a trainer may
        // call it unconditionally at the end of each update).
        const weightsVersion = tensors ? await from.commit(store, swapIn) : store.version;
        return { weightsVersion, committed, tensors, stagedTensors: staging.size };
      });
    });

    api.declare.method('abortWeightUpdate', (args?: UploadArgs) => {
      const upload = uploadOf('abortWeightUpdate', args);
      if (upload === undefined) return { dropped: staging.clear(), weightsVersion: store.version };
      const dropped = uploads.get(upload)?.clear() ?? 0;
      uploads.delete(upload);
      return { dropped, weightsVersion: store.version };
    });
  },
});
