// Issue 12's figures: data-parallel scaling on one host, thread vs child-process worker start, the
// fleet gateway's overhead against a direct server, and weights version propagation.
//   node bin/run-ts.js bench/fleet.ts [--part all|dp|gateway|propagation] [--workers 1,2,4]
//     [--threads 4] [--batch 16] [--reps 5] [--fleet-workers 1]
//     [--model DIR] [--update FILE] [--prop-reps 3]
//     [--grid 1x4,4x4,8x2,16x1+spin] [--calls-per-worker 4] [--ceiling-seconds 2] [--name NAME] [--skip-start]
// Data parallel: --grid (fleet-grid.ts) replaces --workers x --threads; with --ceiling-seconds,
// each entry also runs its bare ONNX Runtime loops (fleet-ceiling.ts), the machine's own scaling.
// Propagation: fleet workers load the model folder DIR (`omni-worker dummy-model --out DIR
// --hidden 2048 --layers 10` is ~1 GB), and each rep commits FILE (DIR/transformer.safetensors
// by default) as a new version. Needs nats-server (PATH, or NATS_SERVER) for the fleet parts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createWorker, withDefaultModel, type OmniWorker } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { FleetClient } from '../fleet/fleet-client.ts';
import { buildServer } from '../server/app.ts';
import { freePort, startFleetWorker, startNats, stop, type WorkerProcess } from '../test/support/nats.ts';
import { median, timeIt, writeResults } from './support.ts';
import { gridRows, parseGrid, type GridEntry, type Measured } from './fleet-grid.ts';
import { runLoops, type LoopSpec } from './fleet-ceiling.ts';

const { values: a } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' }, threads: { type: 'string', default: '1' }, batch: { type: 'string', default: '16' },
    reps: { type: 'string', default: '5' }, 'fleet-workers': { type: 'string', default: '1' },
    part: { type: 'string', default: 'all' }, model: { type: 'string' }, update: { type: 'string' }, 'prop-reps': { type: 'string', default: '3' },
    grid: { type: 'string' }, 'calls-per-worker': { type: 'string', default: '4' }, 'ceiling-seconds': { type: 'string', default: '0' }, name: { type: 'string' }, 'skip-start': { type: 'boolean', default: false },
  },
});
const PARTS = ['all', 'dp', 'gateway', 'propagation'];
if (!PARTS.includes(a.part!)) throw new Error(`--part must be one of ${PARTS.join(', ')}, got ${a.part}`);
// Checked before any work: the propagation part needs a model folder.
if ((a.part === 'all' || a.part === 'propagation') && !a.model) {
  throw new Error('the propagation part needs --model DIR (omni-worker dummy-model --out DIR --hidden 2048 --layers 10: ~1 GB)');
}
const threads = Number(a.threads);
// Checked before any work: a bad grid entry is named.
const grid = parseGrid(a.grid ?? a.workers!.split(',').map((n) => `${n}x${threads}`).join(','));
const callsPerWorker = Number(a['calls-per-worker']);
const unpinnable = grid.find((e) => e.pin && e.workers * e.threads > availableParallelism());
if (unpinnable) throw new Error(`--grid entry '${unpinnable.label}': pinning needs ${unpinnable.workers * unpinnable.threads} processors; this machine has ${availableParallelism()}`);
const ceilingSeconds = Number(a['ceiling-seconds']);
const batch = Number(a.batch);
const reps = Number(a.reps);
const base = withDefaultModel(resolveConfig({ threads, maxBatchSize: batch, promptCacheSize: 0 }));
// Steps fixed here (the embedded model's default): the ceiling's loops count transformer runs.
const STEPS = 10;
const requests = (k: number) => [{ prompt: 'a red circle on the left', steps: STEPS, seeds: Array.from({ length: batch }, (_, i) => k * batch + i) }];
const results: Record<string, unknown> = {};
const name = a.name ?? `fleet-${a.part}-${a.workers!.replaceAll(',', '-')}x${threads}${a.part === 'dp' ? '' : `-fleet${a['fleet-workers']}`}`;

/** images/s of `calls` concurrent batch-sized calls, median of reps. */
async function throughput(w: Pick<OmniWorker, 'generate'>, calls: number): Promise<number> {
  await w.generate(requests(0));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push(await timeIt(() => Promise.all(Array.from({ length: calls }, (_, k) => w.generate(requests(k + 1))))));
  return (calls * batch) / median(times);
}

if (a.part === 'all' || a.part === 'dp') {
  // Each entry: `calls-per-worker` concurrent calls of `batch` samples per worker, then (with
  // --ceiling-seconds) its bare loops: `workers` at once and one alone, each loop a worker's share.
  const measured: Measured[] = [];
  const loneLoop = new Map<string, number>();
  for (const e of grid) {
    const began = performance.now();
    const w = await createWorker({ ...base, ...entryConfig(e), dataParallelSize: e.workers });
    const imagesPerSecond = await throughput(w, callsPerWorker * e.workers);
    await w.close();
    let ceiling: Measured['ceiling'];
    if (ceilingSeconds > 0) {
      const spec = loopSpec(e, batch);
      // One loop alone runs what one worker's part is: the whole call.
      const oneSpec = { ...spec, samples: batch };
      const key = JSON.stringify(oneSpec);
      if (!loneLoop.has(key)) loneLoop.set(key, (await runLoops(oneSpec, 1)).samplesPerSecond);
      const one = loneLoop.get(key)!;
      // One worker's loops are the lone loop.
      const all = e.workers === 1 ? one : (await runLoops(spec, e.workers)).samplesPerSecond;
      ceiling = { one, all, pinned: e.pin ? (await runLoops(spec, e.workers, true)).samplesPerSecond : undefined };
    }
    measured.push({ entry: e, imagesPerSecond, ceiling });
    const pinned = ceiling?.pinned !== undefined ? `, pinned ${ceiling.pinned.toFixed(1)}` : '';
    const c = ceiling ? `; bare loops ${ceiling.all.toFixed(1)}${pinned} vs one ${ceiling.one.toFixed(1)} samples/s (${(ceiling.all / ceiling.one).toFixed(2)}x)` : '';
    console.log(`data parallel ${e.label}: ${imagesPerSecond.toFixed(2)} images/s${c} [${((performance.now() - began) / 1000).toFixed(1)} s]`);
    // Written after each entry: a run cut short by its deadline keeps the entries done.
    results.dataParallel = { batch, callsPerWorker, ceilingSeconds, grid: measured, rows: gridRows(measured, STEPS) };
    writeResults(name, results);
  }
  const rows = gridRows(measured, STEPS);
  console.log(`grid, ratios (${reps} reps of ${callsPerWorker} calls of ${batch} per worker; bare loops ${ceilingSeconds} s):`);
  for (const r of rows) {
    const f = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)}x`);
    console.log(`${r.label}: ${r.imagesPerSecond.toFixed(2)} images/s, vs one worker ${f(r.scaling)}, bare loops ${f(r.ceilingScaling)}, of the ceiling ${r.ofCeiling === undefined ? '-' : r.ofCeiling.toFixed(3)}, of the bare loops' rate ${r.ofBareRate === undefined ? '-' : r.ofBareRate.toFixed(3)}${r.pinnedCeilingScaling === undefined ? '' : `, pinned bare loops ${f(r.pinnedCeilingScaling)}`}, vs ${rows[0].label} ${f(r.vsFirst)}`);
  }
}
if ((a.part === 'all' || a.part === 'dp') && !a['skip-start']) {
  // Start time: one more inference thread vs one more Node process that builds the same worker.
  const threadStart: number[] = [];
  const processStart: number[] = [];
  const script = fileURLToPath(new URL('./fleet-start-worker.ts', import.meta.url));
  const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
  for (let r = 0; r < 3; r++) {
    threadStart.push(await timeIt(async () => (await createWorker({ ...base })).close()));
    processStart.push(await timeIt(async () => { execFileSync(process.execPath, [runTs, script, String(threads)]); }));
  }
  results.start = { threadSeconds: median(threadStart), processSeconds: median(processStart) };
  console.log(`worker start: thread ${median(threadStart).toFixed(2)} s, child process ${median(processStart).toFixed(2)} s`);
}

if (a.part === 'all' || a.part === 'gateway' || a.part === 'propagation') {
  const dir = mkdtempSync(join(tmpdir(), 'bench-fleet-'));
  const port = await freePort();
  const nats = await startNats(port, join(dir, 'store'));
  const url = `nats://127.0.0.1:${port}`;
  const fleetOptions = { partSamples: batch, weightSyncTimeoutMs: 600_000 };
  const gateway = await FleetClient.connect({ nats: url, config: base, fleet: fleetOptions });
  const configFile = join(dir, 'worker.json');
  const n = Number(a['fleet-workers']);
  const procs: WorkerProcess[] = [];
  const startWorkers = async (config: object, prefix: string) => {
    await Promise.all(procs.splice(0).map((p) => stop(p.proc)));
    writeFileSync(configFile, JSON.stringify(config));
    procs.push(...await Promise.all(Array.from({ length: n }, (_, i) => startFleetWorker(url, configFile, `${prefix}${i}`, fleetOptions))));
  };
  try {
    if (a.part !== 'propagation') {
      // Gateway overhead: the same HTTP route over the fleet (n workers) and over one local worker.
      await startWorkers({ threads, maxBatchSize: batch, promptCacheSize: 0, model: base.model }, 'b');
      const direct = await createWorker({ ...base });
      const [viaFleet, viaDirect] = await Promise.all([buildServer(gateway, { coalesceMs: 0 }), buildServer(direct, { coalesceMs: 0 })]);
      const post = (s: typeof viaFleet) => ({ generate: async (r: unknown) => s.app.inject({ method: 'POST', url: '/v1/rollouts', payload: r as object }) as never });
      const fleetRate = await throughput(post(viaFleet), 1);
      const directRate = await throughput(post(viaDirect), 1);
      await Promise.all([viaFleet.close(), viaDirect.close()]);
      await direct.close();
      results.gateway = { fleetWorkers: n, batch, fleetImagesPerSecond: fleetRate, directImagesPerSecond: directRate, ratio: fleetRate / directRate };
      console.log(`HTTP rollouts at batch ${batch}: fleet (${n} worker) ${fleetRate.toFixed(2)} images/s, direct ${directRate.toFixed(2)}, ratio ${(fleetRate / directRate).toFixed(3)}`);
    }
    if (a.part !== 'gateway') {
      // Propagation: a version of the model's transformer, from the commit until every worker serves it.
      const update = a.update ?? join(a.model!, 'transformer.safetensors');
      await startWorkers({ threads, model: a.model }, 'p');
      const bytes = statSync(update).size;
      const stage: number[] = [];
      const commit: number[] = [];
      for (let r = 0; r < Number(a['prop-reps']); r++) {
        stage.push(await timeIt(() => gateway.executeMethod('loadWeights', { source: update, bucket: true })));
        commit.push(await timeIt(() => gateway.executeMethod('finishWeightUpdate')));
      }
      results.propagation = { workers: n, bytes, stageSeconds: median(stage), seconds: median(commit), commitSeconds: commit };
      console.log(`weights version of ${(bytes / 1e9).toFixed(2)} GB to ${n} workers: ${median(commit).toFixed(2)} s from the commit to every worker serving it (runs ${commit.map((t) => t.toFixed(2)).join(', ')}; the gateway read the file in ${median(stage).toFixed(2)} s)`);
    }
  } finally {
    await gateway.close();
    await Promise.all(procs.map((p) => stop(p.proc)));
    await stop(nats);
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`results: ${writeResults(name, results)}`);

/** The worker config of a grid entry. */
function entryConfig(e: GridEntry) {
  return {
    threads: e.threads, threadSpinning: e.spin, weightResidency: e.session ? 'session' : 'auto',
    dataParallelSplit: e.all ? 'all' : 'idle',
  } as const;
}

/** A bare loop of one worker's share: the whole call, or 1/workers of it when every call is split. */
function loopSpec(e: GridEntry, samples: number): LoopSpec {
  return {
    model: base.model!, threads: e.threads, samples: e.all ? Math.ceil(samples / e.workers) : samples,
    cfg: (base.defaults.guidanceScale ?? 4.5) > 1, spinning: e.spin, residency: e.session ? 'session' : 'inputs', seconds: ceilingSeconds,
  };
}
