// Issue 12's figures: data-parallel scaling on one host, thread vs child-process worker start, the
// fleet gateway's overhead against a direct server, and weights version propagation.
//   node bin/run-ts.js bench/fleet.ts [--part all|dp|gateway|propagation] [--workers 1,2,4]
//     [--threads 4] [--batch 16] [--reps 5] [--fleet-workers 1]
//     [--model DIR] [--update FILE] [--prop-reps 3]
// Propagation: fleet workers load the model folder DIR (`omni-worker dummy-model --out DIR
// --hidden 2048 --layers 10` is ~1 GB), and each rep commits FILE (DIR/transformer.safetensors
// by default) as a new version. Needs nats-server (PATH, or NATS_SERVER) for the fleet parts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createWorker, withDefaultModel, type OmniWorker } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { FleetClient } from '../fleet/fleet-client.ts';
import { buildServer } from '../server/app.ts';
import { freePort, startFleetWorker, startNats, stop, type WorkerProcess } from '../test/support/nats.ts';
import { median, timeIt, writeResults } from './support.ts';

const { values: a } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' }, threads: { type: 'string', default: '1' }, batch: { type: 'string', default: '16' },
    reps: { type: 'string', default: '5' }, 'fleet-workers': { type: 'string', default: '1' },
    part: { type: 'string', default: 'all' }, model: { type: 'string' }, update: { type: 'string' }, 'prop-reps': { type: 'string', default: '3' },
  },
});
const PARTS = ['all', 'dp', 'gateway', 'propagation'];
if (!PARTS.includes(a.part!)) throw new Error(`--part must be one of ${PARTS.join(', ')}, got ${a.part}`);
// Checked before any work: the propagation part needs a model folder.
if ((a.part === 'all' || a.part === 'propagation') && !a.model) {
  throw new Error('the propagation part needs --model DIR (omni-worker dummy-model --out DIR --hidden 2048 --layers 10: ~1 GB)');
}
const threads = Number(a.threads);
const batch = Number(a.batch);
const reps = Number(a.reps);
const base = withDefaultModel(resolveConfig({ threads, maxBatchSize: batch, promptCacheSize: 0 }));
const requests = (k: number) => [{ prompt: 'a red circle on the left', seeds: Array.from({ length: batch }, (_, i) => k * batch + i) }];
const results: Record<string, unknown> = {};

/** images/s of `calls` concurrent batch-sized calls, median of reps. */
async function throughput(w: Pick<OmniWorker, 'generate'>, calls: number): Promise<number> {
  await w.generate(requests(0));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push(await timeIt(() => Promise.all(Array.from({ length: calls }, (_, k) => w.generate(requests(k + 1))))));
  return (calls * batch) / median(times);
}

if (a.part === 'all' || a.part === 'dp') {
  // Scaling: each worker count gets 4 concurrent calls of `batch` samples per worker.
  const scaling: Record<string, number> = {};
  for (const n of a.workers!.split(',').map(Number)) {
    const w = await createWorker({ ...base, dataParallelSize: n });
    scaling[n] = await throughput(w, 4 * n);
    await w.close();
    console.log(`data parallel ${n} x ${threads} threads: ${scaling[n].toFixed(2)} images/s`);
  }
  results.dataParallel = { threads, batch, imagesPerSecond: scaling };
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

const name = `fleet-${a.part}-${a.workers!.replaceAll(',', '-')}x${threads}${a.part === 'dp' ? '' : `-fleet${a['fleet-workers']}`}`;
console.log(`results: ${writeResults(name, results)}`);
