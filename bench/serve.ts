// Issue 11's figures: the worker served over HTTP to a Python trainer (clients/python), against
// the same worker called in process, in one process, repetitions interleaved.
//   1. batch-16 rollouts: Python client over HTTP vs worker.generate in process (goal >= 0.95)
//   2. 8 client processes of 2 samples at once vs one client of 16 (goal >= 0.9 of its throughput)
//   3. weight upload GB/s: numpy state dict over HTTP, and a /dev/shm file by path, vs a plain
//      memory copy of the same bytes (goals >= 0.5 and >= 0.9); for reference, the same body sent
//      to a server that drops it (the loopback socket alone)
//   node bin/run-ts.js bench/serve.ts [--reps 5] [--rounds 4] [--hidden 1024] [--layers 4] [--only rollouts|weights]
import { execFile, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { createWorker, type OmniWorker } from '../index.ts';
import { writeSafetensorsFile } from '../core/tensors/safetensors.ts';
import { buildDummyModel } from '../plugins/dummy-loader/index.ts';
import { dummyArchSchema } from '../plugins/dummy-loader/architecture.ts';
import { buildServer } from '../server/app.ts';
import { median, timeIt, writeResults } from './support.ts';

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' }, rounds: { type: 'string', default: '4' },
    hidden: { type: 'string', default: '1024' }, layers: { type: 'string', default: '4' },
    only: { type: 'string' }, // 'rollouts' or 'weights'
  },
});
const reps = Number(args.reps);
const rounds = Number(args.rounds);
const CLIENT = fileURLToPath(new URL('./serve-client.py', import.meta.url));
const PROMPT = 'a red circle at the top left on a white background';
const run = promisify(execFile);

async function py<T>(url: string, ...rest: (string | number)[]): Promise<T> {
  const { stdout } = await run('python3', [CLIENT, url, ...rest.map(String)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

/**
 * One long-lived client process taking `URL MODE ARGS` lines (serve-client.py commands), as a
 * trainer is: a process started per measure forks this one first, and a fork write-protects every
 * page of this process, so the server's next writes into memory it reuses (freed tensors) fault
 * again inside the timed window (26k faults per 100 MB path load instead of 8k, measured).
 */
function trainer(): { call<T>(...args: (string | number)[]): Promise<T>; close(): void } {
  const child = spawn('python3', [CLIENT, 'commands'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let queue = Promise.resolve();
  return {
    call<T>(...args: (string | number)[]) {
      const answer = queue.then(async () => {
        child.stdin!.write(`${args.join(' ')}\n`);
        const line = await answers.next();
        if (line.done) throw new Error(`serve-client.py exited (code ${child.exitCode})`);
        return JSON.parse(line.value) as T;
      });
      queue = answer.then(() => undefined, () => undefined);
      return answer;
    },
    close: () => { child.stdin!.end(); },
  };
}

async function serve(worker: OmniWorker) {
  const server = await buildServer(worker, { port: 0 });
  return { server, url: await server.listen() };
}

// 1 and 2: the embedded model (10 steps, CFG), batches of 16.
async function rollouts() {
const worker = await createWorker({ maxBatchSize: 16 });
const { server, url } = await serve(worker);
await worker.generate([{ prompt: PROMPT, numOutputsPerPrompt: 16, seed: 0 }]);
await py(url, 'rollout', 16, 0);
const inProcess: number[] = [];
const http: number[] = [];
// CPU seconds too (this process, ONNX Runtime's threads included, plus the client's): far less
// sensitive than wall time to other processes sharing the cores.
const inProcessCpu: number[] = [];
const httpCpu: number[] = [];
const cpuOf = async (fn: () => Promise<number>, into: number[], cpu: number[], extra = () => 0) => {
  const c0 = process.cpuUsage();
  into.push(await fn());
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1e6 + extra());
};
for (let r = 0; r < reps; r++) {
  const seed = 100 + r;
  let clientCpu = 0;
  const local = () => cpuOf(() => timeIt(() => worker.generate([{ prompt: PROMPT, numOutputsPerPrompt: 16, seed }])), inProcess, inProcessCpu);
  const remote = () => cpuOf(async () => {
    const res = await py<{ seconds: number; cpuSeconds: number }>(url, 'rollout', 16, seed);
    clientCpu = res.cpuSeconds;
    return res.seconds;
  }, http, httpCpu, () => clientCpu);
  if (r % 2) { await remote(); await local(); } else { await local(); await remote(); }
}
const rollout = {
  batch: 16, reps,
  inProcessSeconds: median(inProcess), httpSeconds: median(http),
  ratio: +(median(inProcess) / median(http)).toFixed(3),
  inProcessCpuSeconds: median(inProcessCpu), httpCpuSeconds: median(httpCpu),
  cpuRatio: +(median(inProcessCpu) / median(httpCpu)).toFixed(3),
  inProcessByRep: inProcess.map((s) => +s.toFixed(3)), httpByRep: http.map((s) => +s.toFixed(3)),
};
console.log('batch-16 rollout', rollout);

interface Conc { seconds: number; samples: number; samplesPerSec: number }
const one: number[] = [];
const eight: number[] = [];
let generateCalls = 0;
let eightSamples = 0;
const calls = () => server.metrics.generateCalls.get().then((m) => m.values[0]?.value ?? 0);
for (let r = 0; r < reps; r++) {
  const single = async () => one.push((await py<Conc>(url, 'concurrent', 1, 16, rounds)).samplesPerSec);
  const many = async () => {
    const c0 = await calls();
    const res = await py<Conc>(url, 'concurrent', 8, 2, rounds);
    generateCalls += (await calls()) - c0;
    eightSamples += res.samples;
    eight.push(res.samplesPerSec);
  };
  if (r % 2) { await many(); await single(); } else { await single(); await many(); }
}
const coalescing = {
  rounds, reps,
  oneClientOf16SamplesPerSec: +median(one).toFixed(2), eightClientsOf2SamplesPerSec: +median(eight).toFixed(2),
  ratio: +(median(eight) / median(one)).toFixed(3),
  meanSamplesPerGenerateCall: +(eightSamples / generateCalls).toFixed(2),
};
console.log('8 clients x 2 vs 1 x 16', coalescing);
await server.close();
await worker.close();
return { rollout, coalescing };
}

// 3: a dummy model with a large transformer; its seed-1 weights as the trainer's update.
// Timed (inside Python): from the client's call to its answer, which the server sends once the new
// weights are committed (the version bumped: the next rollout uses them). Plain copy: a memcpy of
// the same bytes in this process, from memory already resident (the update as a trainer holds it)
// into fresh memory (as any load needs memory of its own): `new Uint8Array(n).set(source)`.
async function weightUploads() {
const arch = dummyArchSchema.parse({ hidden: Number(args.hidden), layers: Number(args.layers), height: 16, width: 16, seed: 1 });
const big = await createWorker({ loadFormat: 'dummy', loadOptions: { ...arch, seed: 0 } });
const { server, url } = await serve(big);
const sink = await discardingServer();
const weights = buildDummyModel(arch).components.transformer!.weights;
const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const file = join(shm, `omni-bench-${process.pid}.safetensors`);
await writeSafetensorsFile(file, weights);
let bytes = 0;
for (const t of weights.values()) bytes += t.data.byteLength;
const source = new Uint8Array(await readFile(file)).subarray(0, bytes); // resident: every page touched
const copySeconds: number[] = [];
const readSeconds: number[] = [];
const loopback: number[] = [];
const upload: number[] = [];
const uploadBuckets: number[] = [];
const path: number[] = [];
// The same file again at once: a trainer that sends every version by path replaces one that came
// by path (above, the version replaced came in the previous repetition's HTTP upload).
const pathAgain: number[] = [];
const client = trainer();
const py = <T>(...args: (string | number)[]) => client.call<T>(...args);
await py(url, 'path', file); // warm: code compiled, the file in the page cache
await py(url, 'upload', file, 0);
const load0 = loadavg()[0];
for (let r = 0; r < reps; r++) {
  copySeconds.push(await timeIt(async () => { new Uint8Array(bytes).set(source); }));
  path.push((await py<{ seconds: number }>(url, 'path', file)).seconds);
  pathAgain.push((await py<{ seconds: number }>(url, 'path', file)).seconds);
  readSeconds.push(await timeIt(() => readFile(file)));
  loopback.push((await py<{ seconds: number }>(sink.url, 'upload', file, 0)).seconds);
  upload.push((await py<{ seconds: number }>(url, 'upload', file, 0)).seconds);
  uploadBuckets.push((await py<{ seconds: number }>(url, 'upload', file, 64 << 20)).seconds);
}
client.close();
await rm(file, { force: true });
const gbps = (s: number[]) => +(bytes / median(s) / 1e9).toFixed(3);
const copy = gbps(copySeconds);
// Each repetition's copy against its own measures: less exposed to load drifting between them.
const paired = (s: number[]) => +median(s.map((x, r) => copySeconds[r] / x)).toFixed(3);
const weightUpload = {
  bytes, tensors: weights.size, hidden: arch.hidden, layers: arch.layers, reps, dir: shm,
  loadAverage: [+load0.toFixed(1), +loadavg()[0].toFixed(1)],
  plainCopyGBps: copy, fileReadGBps: gbps(readSeconds),
  loopbackDiscardGBps: gbps(loopback), loopbackRatio: +(gbps(loopback) / copy).toFixed(3),
  httpGBps: gbps(upload), httpRatio: +(gbps(upload) / copy).toFixed(3), httpRatioPaired: paired(upload),
  httpBuckets64MiBGBps: gbps(uploadBuckets), httpBucketsRatio: +(gbps(uploadBuckets) / copy).toFixed(3),
  pathGBps: gbps(path), pathRatio: +(gbps(path) / copy).toFixed(3), pathRatioPaired: paired(path),
  pathAfterPathGBps: gbps(pathAgain), pathAfterPathRatio: +(gbps(pathAgain) / copy).toFixed(3), pathAfterPathRatioPaired: paired(pathAgain),
};
console.log('weight upload', weightUpload);
await sink.close();
await server.close();
await big.close();
return { weightUpload };
}

/** The socket alone: a plain node:http server that reads a body and drops it, answering {}. */
async function discardingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sink = createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => res.setHeader('content-type', 'application/json').end('{}'));
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const { port } = sink.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => sink.close(() => resolve())) };
}

const results = {
  ...(args.only !== 'weights' ? await rollouts() : {}),
  ...(args.only !== 'rollouts' ? await weightUploads() : {}),
};
console.log(`results: ${writeResults(args.only ? `serve-${args.only}-cpu` : 'serve-cpu', results)}`);
