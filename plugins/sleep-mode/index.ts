// plugins/sleep-mode: give memory back between rollouts (the trainer's turn) and take it again.
//   sleep({ level: 1 | 2 = 1, mode: 'wait' | 'abort' = 'wait' })
//     level 1 releases the inference sessions (device memory); weights stay in host memory.
//     level 2 drops the weights too; they come back by loadWeights of full state dicts, or by
//     wakeUp(['weights']) (a reload from the checkpoint) where they were the checkpoint's.
//   wakeUp({ tags }) or wakeUp(tags): 'sessions' ('kv_cache' is an alias), 'weights', and tags other
//   plugins declared (api.declare.wakeTag); all when absent. 'weights' re-reads the checkpoint only
//   for components that served the checkpoint's weights when they were dropped: a trainer's update
//   is not silently replaced by older weights (wakeUp({ checkpoint: true }) asks for that).
//   A plugin's wakeUp tap that throws keeps the worker asleep, and wakeUp rejects naming it.
//   sleepState()
// Readiness is derived from what is held (sessions open, every component's weights present), so
// any order of partial wakes and weight loads ends awake once everything is back. Out of order:
// sleep when what the level releases is already released, and wakeUp when awake, are no-ops
// (freedBytes 0, restored []); a call while a sleep is in progress is an error.
import { z } from 'zod';
import { definePlugin, parseOrThrow, refuseUnknownArguments, tapOptions, weightBytes, type PluginApi, type SleepReport, type WeightMap } from '../../core/public.ts';
import { measureDevice, measureHost, type HostMemory } from './memory.ts';
import { CheckpointTracker } from './checkpoint.ts';
import { WakeFailures } from './wake-failures.ts';

export const PLUGIN_NAME = 'sleep-mode';

declare module '../../core/public.ts' {
  /** While a sleep runs and until everything is back. */
  interface PluginWorkerStates { sleeping: true }
  interface OmniWorkerMethods {
    /** Releases sessions (level 1), and weights too (level 2); returns what was freed, measured. */
    sleep(args?: SleepArgs): SleepResult;
    /** Restores what the tags name (all declared tags when absent). */
    wakeUp(tags?: WakeUpArgs): WakeResult;
    sleepState(): SleepState;
  }
}

export type SleepArgs = z.input<typeof sleepArgs>;
/** ['weights', 'sessions'], { tags: [...], checkpoint? }, or nothing for every declared tag. */
export type WakeUpArgs = readonly string[] | { tags?: readonly string[]; checkpoint?: boolean };

export interface SleepState {
  asleep: boolean;
  /** 0 awake, 1 sessions released, 2 weights dropped. */
  level: 0 | 1 | 2;
  sessionsOpen: boolean;
  weightsMissing: string[];
  weightsBytes: number;
  weightsVersion: number;
  /** Plugins whose wakeUp tap failed, with the error. */
  wakeFailures?: Record<string, string>;
}

const optionsSchema = z.object({
  /** Also measure device memory through nvidia-smi (CUDA benchmarks). */
  measureDevice: z.boolean().default(false),
}).strict();

const sleepArgs = z.object({
  level: z.union([z.literal(1), z.literal(2)], { error: (i) => `must be 1 or 2, got ${JSON.stringify(i.input)}` }).default(1),
  mode: z.enum(['wait', 'abort'], { error: (i) => `must be 'wait' or 'abort', got ${JSON.stringify(i.input)}` }).default('wait'),
}).strict();

/** Aliases of the tags this plugin declares (vLLM's 'kv_cache'). */
const ALIASES: Record<string, string> = { kv_cache: 'sessions' };

export interface WakeResult {
  restored: string[];
  awake: boolean;
  weightsVersion: number;
  /** Components whose weights this wake re-read from the checkpoint. */
  fromCheckpoint?: string[];
  seconds: number;
  asleep?: string;
}

export interface SleepResult {
  level: 1 | 2;
  released: string[];
  /**
   * Memory freed, measured: on the host the larger of the rss and `external` decreases after a
   * full GC (rss misses what the allocator keeps for reuse, external misses ONNX Runtime's native
   * memory), plus the device's decrease when measured.
   */
  freedBytes: number;
  /** Decreases measured after a full GC (negative: grew). */
  host: HostMemory;
  /** Device memory decrease (nvidia-smi), when measured. */
  deviceFreedBytes?: number;
  /** Bytes the weights held in host memory before the sleep. */
  weightsBytes: number;
  /** What the releasing plugins accounted for (weights dropped, caches cleared). */
  accountedBytes: number;
  /** Rollouts awaited or aborted first. */
  drained: number;
  seconds: number;
}

export function createSleepMode(api: PluginApi, options: z.output<typeof optionsSchema>) {
  const { hooks, sessions } = api;
  const store = api.weights;
  let sleeping = false; // a sleep in progress: refuse new rollouts, wakes and other sleeps
  const tagsOf = (plugin: string) => api.declared.names('wakeTag').filter((t) => api.declared.ownerOf('wakeTag', t) === `plugin '${plugin}'`);
  const failures = new WakeFailures(hooks, PLUGIN_NAME, tagsOf);
  const checkpoint = new CheckpointTracker(store);

  const sessionsOpen = () => sessions.openCount === sessions.total;
  const missingWeights = () => store.components.filter((c) => !store.get(c));
  const heldBytes = () => Object.values(store.set).reduce((s, m) => s + weightBytes(m), 0);

  function asleepReason(): string | undefined {
    if (sleeping) return 'a sleep is in progress';
    const reasons: string[] = [];
    if (!sessionsOpen()) reasons.push("its sessions are released (wakeUp({ tags: ['sessions'] }))");
    const missing = missingWeights();
    if (missing.length) reasons.push(`the weights of ${missing.join(', ')} are dropped (loadWeights them, or wakeUp({ tags: ['weights'] }))`);
    for (const [plugin, e] of failures.entries) {
      const tags = tagsOf(plugin);
      reasons.push(`plugin '${plugin}' failed to wake (${e.message}; wakeUp(${tags.length ? `{ tags: ${JSON.stringify(tags)} }` : ''}) again)`);
    }
    return reasons.length ? reasons.join(' and ') : undefined;
  }

  function markAwakeIfReady(): void {
    if (api.state.current === 'sleeping' && !asleepReason()) api.state.set('ready', 'awake');
  }

  hooks.beforeExecute.tap(tapOptions(PLUGIN_NAME, 'pre'), () => {
    const reason = asleepReason();
    if (reason) throw new Error(`the worker is asleep: ${reason}`);
  });

  // This plugin's own release runs last, after other plugins let go of what they derived.
  hooks.sleep.tapPromise(tapOptions(PLUGIN_NAME, 'post'), async (report: SleepReport): Promise<SleepReport> => {
    const released = [...report.released];
    if (await sessions.releaseAll()) released.push('sessions');
    let freed = report.freedBytes;
    if (report.level >= 2 && missingWeights().length < store.components.length) {
      freed += store.drop();
      released.push('weights');
    }
    return { ...report, freedBytes: freed, released };
  });

  let reloaded: string[] = []; // by the wake in progress
  hooks.wakeUp.tapPromise(tapOptions(PLUGIN_NAME, 'pre'), async (tags) => {
    if (tags.includes('weights')) reloaded = await reloadMissingWeights();
    if (tags.includes('sessions')) await sessions.openAll();
  });

  /** Reads the checkpoint again for the components whose weights are gone; returns them. */
  async function reloadMissingWeights(): Promise<string[]> {
    const missing = missingWeights();
    if (!missing.length) return [];
    const reloaded = await api.model.source.reloadWeights();
    const update: Record<string, WeightMap> = {};
    for (const c of missing) {
      const map = reloaded[c];
      const params = store.parameters(c)!;
      const bad = [...params].find(([n, p]) => { const t = map?.get(n); return !t || t.dtype !== p.dtype || t.shape.join() !== p.shape.join(); });
      if (!map || bad) throw new Error(`wakeUp: the checkpoint's ${c} weights no longer match the model${bad ? ` ('${bad[0]}')` : ''}; load them with loadWeights`);
      update[c] = map;
    }
    await checkpoint.installCheckpoint(update);
    return missing;
  }

  // A weight load can complete a partial wake (wakeUp(['sessions']) then loadWeights).
  store.onChange(() => { if (!sleeping) markAwakeIfReady(); });

  async function sleep(args: unknown = {}): Promise<SleepResult> {
    const { level, mode } = parseOrThrow(sleepArgs, args ?? {}, 'sleep', 'arguments');
    if (sleeping) throw new Error('sleep: a sleep is already in progress');
    sleeping = true;
    try {
      api.state.set('sleeping', `level ${level}`);
      const drained = await api.drainRollouts(mode, 'aborted by sleep');
      const weightsBytes = heldBytes();
      const host0 = await measureHost();
      const device0 = options.measureDevice ? await measureDevice() : undefined;
      const t0 = performance.now();
      const report = await hooks.sleep.promise({ level, freedBytes: 0, released: [] });
      const seconds = (performance.now() - t0) / 1000;
      const host1 = await measureHost();
      const device1 = options.measureDevice ? await measureDevice() : undefined;
      const host = { rss: host0.rss - host1.rss, external: host0.external - host1.external, arrayBuffers: host0.arrayBuffers - host1.arrayBuffers };
      const deviceFreed = device0 !== undefined && device1 !== undefined ? device0 - device1 : undefined;
      return {
        level,
        released: report.released,
        freedBytes: Math.max(0, host.rss, host.external) + Math.max(0, deviceFreed ?? 0),
        host,
        ...(deviceFreed !== undefined ? { deviceFreedBytes: deviceFreed } : {}),
        weightsBytes,
        accountedBytes: report.freedBytes,
        drained,
        seconds,
      };
    } finally {
      sleeping = false;
      markAwakeIfReady(); // a no-op sleep (nothing left to release) leaves the worker serving
    }
  }

  async function wakeUp(arg?: unknown): Promise<WakeResult> {
    if (sleeping) throw new Error('wakeUp: a sleep is in progress; wait for it to return');
    const { tags, fromCheckpoint } = parseWakeArgs(arg, api.declared.names('wakeTag'));
    // Before anything is restored: the checkpoint must not stand in for a trainer's update.
    const updated = tags.includes('weights') && !fromCheckpoint ? checkpoint.updatedOf(missingWeights()) : [];
    if (updated.length) {
      throw new Error(`wakeUp: the weights of ${updated.join(', ')} dropped by the level-2 sleep came from loadWeights (version ${store.version}), ` +
        "not from the checkpoint, and the checkpoint is all 'weights' can re-read. loadWeights the trainer's weights (full state dicts) " +
        "and wake the rest (wakeUp() or wakeUp({ tags: ['sessions'] })), or pass checkpoint: true to serve the checkpoint's weights again. Nothing was restored.");
    }
    const t0 = performance.now();
    const before = { sessions: sessionsOpen(), weights: missingWeights().length === 0 };
    const failedBefore = new Map(failures.entries);
    reloaded = [];
    await hooks.wakeUp.promise(tags);
    const failedNow = failures.entries.filter(([plugin, e]) => failedBefore.get(plugin) !== e);
    const failedTags = new Set(failedNow.flatMap(([plugin]) => tagsOf(plugin)));
    // Plugins' own tags count as restored once their taps returned without throwing.
    const restored = tags.filter((t) => t !== 'sessions' && t !== 'weights' ? !failedTags.has(t) : !before[t] && (t === 'sessions' ? sessionsOpen() : missingWeights().length === 0));
    if (failedNow.length) {
      if (api.state.current !== 'sleeping') api.state.set('sleeping', `plugin '${failedNow[0][0]}' failed to wake`);
      const what = failedNow.map(([plugin, e]) => `plugin '${plugin}' failed to restore ${tagsOf(plugin).join(', ') || 'its state'}: ${e.message}`).join('; ');
      throw new Error(`wakeUp: ${what}. Restored: ${restored.join(', ') || 'nothing'}; the worker stays asleep until that plugin wakes (sleepState() says what is missing).`);
    }
    markAwakeIfReady();
    const asleep = asleepReason();
    return {
      restored, awake: !asleep, weightsVersion: store.version,
      ...(reloaded.length ? { fromCheckpoint: reloaded } : {}),
      seconds: (performance.now() - t0) / 1000,
      ...(asleep ? { asleep } : {}),
    };
  }

  function sleepState(): SleepState {
    const missing = missingWeights();
    return {
      asleep: asleepReason() !== undefined,
      level: missing.length ? 2 : sessionsOpen() ? 0 : 1,
      sessionsOpen: sessionsOpen(),
      weightsMissing: missing,
      weightsBytes: heldBytes(),
      weightsVersion: store.version,
      ...(failures.entries.length ? { wakeFailures: Object.fromEntries(failures.entries.map(([p, e]) => [p, e.message])) } : {}),
    };
  }

  return { sleep, wakeUp, sleepState };
}

/**
 * wakeUp(['weights']), wakeUp({ tags: [...], checkpoint? }), or wakeUp() for everything declared:
 * this plugin's 'weights' and 'sessions', and the tags other plugins declared (api.declare.wakeTag).
 */
function parseWakeArgs(arg: unknown, declared: readonly string[]): { tags: string[]; fromCheckpoint: boolean } {
  let raw: unknown;
  let fromCheckpoint = false;
  if (Array.isArray(arg) || arg === undefined || arg === null) raw = arg ?? undefined;
  else if (typeof arg === 'object') {
    refuseUnknownArguments('wakeUp', arg, ['tags', 'checkpoint']);
    const { tags, checkpoint } = arg as { tags?: unknown; checkpoint?: unknown };
    if (checkpoint !== undefined && typeof checkpoint !== 'boolean') throw new Error(`wakeUp: checkpoint must be true or false, got ${JSON.stringify(checkpoint)}`);
    raw = tags;
    fromCheckpoint = checkpoint ?? false;
  } else throw new Error(`wakeUp: expected tags (an array) or { tags?, checkpoint? }, got ${JSON.stringify(arg)}`);
  if (raw === undefined || raw === null) raw = declared;
  if (!Array.isArray(raw) || raw.length === 0) throw new Error('wakeUp: tags must be a non-empty array (omit them to wake everything)');
  const tags = new Set<string>();
  for (const t of raw) {
    const tag = typeof t === 'string' ? ALIASES[t] ?? t : undefined;
    if (tag === undefined || !declared.includes(tag)) {
      throw new Error(`wakeUp: unknown tag ${JSON.stringify(t)} (known: ${[...declared, ...Object.keys(ALIASES)].join(', ')})`);
    }
    tags.add(tag);
  }
  // Weights before sessions (sessions are only useful with weights to run), other plugins' tags last.
  const own = ['weights', 'sessions'];
  return { tags: [...own, ...declared.filter((t) => !own.includes(t))].filter((t) => tags.has(t)), fromCheckpoint };
}

export default definePlugin({
  name: PLUGIN_NAME,
  optionsSchema,
  apply(api, options) {
    api.declare.state('sleeping');
    api.declare.wakeTag('weights');
    api.declare.wakeTag('sessions');
    const s = createSleepMode(api, options);
    api.declare.method('sleep', s.sleep);
    api.declare.method('wakeUp', s.wakeUp);
    api.declare.method('sleepState', s.sleepState);
  },
});
