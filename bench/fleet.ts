// Issue 12's figures: data-parallel scaling on one host, thread vs child-process worker start, the
// fleet gateway's overhead against a direct server, and weights version propagation.
//   node bin/run-ts.js bench/fleet.ts [--workers 1,2,4] [--threads 4] [--batch 16] [--reps 5]
//     [--fleet-workers 1] [--hidden 512 --layers 4]  (the propagation model, dummy architecture)
// Needs nats-server on PATH for the fleet parts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createWorker, withDefaultModel, type OmniWorker } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { FleetClient } from '../fleet/fleet-client.ts';
import { buildServer } from '../server/app.ts';
import { buildDummyModel } from '../plugins/dummy-loader/index.ts';
import { dummyArchSchema } from '../plugins/dummy-loader/architecture.ts';
import { freePort, startFleetWorker, startNats, stop } from '../test/support/nats.ts';
import { median, timeIt, writeResults } from './support.ts';

const { values: a } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' }, threads: { type: 'string', default: '1' }, batch: { type: 'string', default: '16' },
    reps: { type: 'string', default: '5' }, 'fleet-workers': { type: 'string', default: '1' }, hidden: { type: 'string', default: '512' },
    layers: { type: 'string', default: '4' }, part: { type: 'string', default: 'all' },
  },
});
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
    scaling[n] = await throughput(w, 4);
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

if (a.part === 'all' || a.part === 'fleet') {
  const dir = mkdtempSync(join(tmpdir(), 'bench-fleet-'));
  const port = await freePort();
  const nats = await startNats(port, join(dir, 'store'));
  const url = `nats://127.0.0.1:${port}`;
  const fleetOptions = { partSamples: batch };
  const gateway = await FleetClient.connect({ nats: url, config: base, fleet: fleetOptions });
  const arch = { hidden: Number(a.hidden), layers: Number(a.layers), heads: 8 };
  const configFile = join(dir, 'worker.json');
  writeFileSync(configFile, JSON.stringify({ threads, maxBatchSize: batch, promptCacheSize: 0, model: base.model }));
  const n = Number(a['fleet-workers']);
  const procs = await Promise.all(Array.from({ length: n }, (_, i) => startFleetWorker(url, configFile, `b${i}`, fleetOptions)));
  try {
    // Gateway overhead: the same HTTP route over the fleet (n workers) and over one local worker.
    const direct = await createWorker({ ...base });
    const [viaFleet, viaDirect] = await Promise.all([buildServer(gateway, { coalesceMs: 0 }), buildServer(direct, { coalesceMs: 0 })]);
    const post = (s: typeof viaFleet) => ({ generate: async (r: unknown) => s.app.inject({ method: 'POST', url: '/v1/rollouts', payload: r as object }) as never });
    const fleetRate = await throughput(post(viaFleet), 1);
    const directRate = await throughput(post(viaDirect), 1);
    await Promise.all([viaFleet.close(), viaDirect.close()]);
    await direct.close();
    results.gateway = { fleetWorkers: n, batch, fleetImagesPerSecond: fleetRate, directImagesPerSecond: directRate, ratio: fleetRate / directRate };
    console.log(`HTTP rollouts at batch ${batch}: fleet (${n} worker) ${fleetRate.toFixed(2)} images/s, direct ${directRate.toFixed(2)}, ratio ${(fleetRate / directRate).toFixed(3)}`);

    // Propagation: a version of a dummy model's transformer, committed, until every worker serves it.
    await Promise.all(procs.map((p) => stop(p.proc)));
    writeFileSync(configFile, JSON.stringify({ threads, loadFormat: 'dummy', loadOptions: arch }));
    procs.splice(0, procs.length, ...await Promise.all(Array.from({ length: n }, (_, i) => startFleetWorker(url, configFile, `p${i}`, fleetOptions))));
    const weights = Object.fromEntries(buildDummyModel(dummyArchSchema.parse({ ...arch, seed: 3 })).components.transformer!.weights);
    const bytes = Object.values(weights).reduce((s, t) => s + t.data.byteLength, 0);
    const times: number[] = [];
    for (let r = 0; r < 3; r++) {
      await gateway.executeMethod('loadWeights', { source: weights, bucket: true });
      times.push(await timeIt(() => gateway.executeMethod('finishWeightUpdate')));
    }
    results.propagation = { workers: n, bytes, seconds: median(times) };
    console.log(`weights version of ${(bytes / 1e6).toFixed(1)} MB to ${n} workers: ${median(times).toFixed(2)} s (commit to every worker serving it)`);
  } finally {
    await gateway.close();
    await Promise.all(procs.map((p) => stop(p.proc)));
    await stop(nats);
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`results: ${writeResults(`fleet-${a.part}-${a.workers!.replaceAll(',', '-')}x${threads}`, results)}`);
