// The NATS fleet end to end: nats-server -js, a gateway (FleetClient, the object the HTTP routes
// call) and three `omni-worker fleet-worker` processes on the dummy model. No request is lost or
// answered twice when a worker is SIGKILLed or the server restarts; a weight update during load
// never mixes versions in a rollout; answers are bit-identical to one worker's for their seeds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { createWorker, type OmniWorker } from '../index.ts';
import { FleetClient } from '../fleet/fleet-client.ts';
import { fleetRoutes } from '../fleet/gateway.ts';
import { buildServer } from '../server/app.ts';
import type { FleetOptionsInput } from '../fleet/options.ts';
import type { GenerateRequest } from '../core/protocol.ts';
import { SMALL_DUMMY } from './support/inline-worker.ts';
import { asRecord, dummyWeights, expectSameRollout } from './support/weights.ts';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { ROLLOUT_CONSUMER, ROLLOUT_STREAM } from '../fleet/names.ts';
import { freePort, startFleetWorker, startNats, stop, type WorkerProcess } from './support/nats.ts';

const BIN = fileURLToPath(new URL('../bin/omni-worker.js', import.meta.url));
const CONFIG = { loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1, defaults: { steps: 2 } };
// Short timings so that a dead worker's part is redelivered, and its entry expires, within seconds.
// Small object chunks: a weights version arrives in many chunks, tensors and header split across them.
const FLEET: FleetOptionsInput = {
  ackWaitMs: 1500, maxDeliveries: 4, heartbeatMs: 250, registryTtlMs: 1200, partSamples: 2, weightSyncTimeoutMs: 20_000, controlTimeoutMs: 10_000,
  objectChunkBytes: 1000,
};

/** Resolves once `n` of the promises have settled. */
function afterSettled(promises: Promise<unknown>[], n: number): Promise<void> {
  let done = 0;
  return new Promise((resolve) => promises.forEach((p) => p.finally(() => { if (++done === n) resolve(); }).catch(() => undefined)));
}

describe('fleet on NATS JetStream', () => {
  let dir: string;
  let port: number;
  let nats: ChildProcess;
  let gateway: FleetClient;
  let reference: OmniWorker;
  let workers: WorkerProcess[] = [];
  const url = () => `nats://127.0.0.1:${port}`;
  const configFile = () => join(dir, 'worker.json');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-'));
    writeFileSync(configFile(), JSON.stringify(CONFIG));
    port = await freePort();
    nats = await startNats(port, join(dir, 'store'));
    gateway = await FleetClient.connect({ nats: url(), config: CONFIG, fleet: FLEET });
    reference = await createWorker({ ...CONFIG, executor: 'inline' });
    workers = await Promise.all(['w0', 'w1', 'w2'].map((id) => startFleetWorker(url(), configFile(), id, FLEET)));
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await Promise.all(workers.map((w) => stop(w.proc)));
    await reference?.close();
    if (nats) await stop(nats);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every call's rollout equals the reference worker's for the same requests, bit for bit. */
  async function expectMatchesReference(requests: GenerateRequest[][], answers: Awaited<ReturnType<FleetClient['generate']>>[]): Promise<void> {
    for (const [i, r] of requests.entries()) {
      const want = await reference.generate(r);
      expectSameRollout(answers[i], want);
      expect(answers[i].nonTensorBatch).toEqual(want.nonTensorBatch);
    }
  }

  it('200 requests with distinct seeds, a worker SIGKILLed mid-run: each answered once, bit-identical to one worker', async () => {
    const requests = Array.from({ length: 200 }, (_, i): GenerateRequest[] => [{ prompt: `shape ${i % 7}`, seeds: [1000 + i] }]);
    const calls = requests.map((r) => gateway.generate(r));
    await afterSettled(calls, 30);
    await stop(workers[1].proc, 'SIGKILL');
    const answers = await Promise.all(calls);
    expect(answers.map((a) => a.nonTensorBatch.seed)).toEqual(requests.map((r) => r[0].seeds));
    await expectMatchesReference(requests, answers);
    // A fresh worker in its place; the dead one's registry entry has expired.
    workers[1] = await startFleetWorker(url(), configFile(), 'w3', FLEET);
    await expect.poll(async () => (await gateway.status()).workers.map((w) => w.id), { timeout: 10_000 }).toEqual(['w0', 'w2', 'w3']);
  }, 60_000);

  it('a weight update during load: no rollout mixes versions; every worker ends on the new version; later calls run on it', async () => {
    const request = (i: number): GenerateRequest[] => [{ prompt: 'a red circle', seeds: [i, i + 1000, i + 2000, i + 3000] }];
    const requests = Array.from({ length: 24 }, (_, i) => request(i));
    const calls = requests.map((r) => gateway.generate(r));
    await afterSettled(calls, 4); // these ran on version 0
    const weights = asRecord(dummyWeights(7).transformer);
    let updated = false;
    const update = gateway.executeMethod('loadWeights', { source: weights }).finally(() => { updated = true; });
    // Calls keep coming while the update propagates (however long that takes on a busy machine).
    while (!updated && requests.length < 200) {
      const r = request(requests.length);
      requests.push(r);
      calls.push(gateway.generate(r));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await update).weightsVersion).toBe(1);
    expect((await gateway.status()).workers.map((w) => w.weightsVersion)).toEqual([1, 1, 1]);
    const answers = await Promise.all(calls);
    const after = await Promise.all(requests.slice(0, 5).map((r) => gateway.generate(r)));
    expect(after.map((a) => a.metaInfo.weights_version)).toEqual([1, 1, 1, 1, 1]);
    // Each rollout is one version's, bit for bit: the reference worker before and after the same
    // update (a rollout whose parts ran on two versions matches neither).
    const versions = answers.map((a) => a.metaInfo.weights_version);
    expect(versions.every((v) => v === 0 || v === 1)).toBe(true);
    for (const [i, r] of requests.entries()) if (versions[i] === 0) expectSameRollout(answers[i], await reference.generate(r));
    await reference.executeMethod('loadWeights', { source: weights });
    for (const [i, r] of requests.entries()) if (versions[i] === 1) expectSameRollout(answers[i], await reference.generate(r));
    await expectMatchesReference(requests.slice(0, 5), after);
  }, 90_000);

  it('nats-server restarted mid-run: every accepted request is answered, as one worker answers it', async () => {
    const requests = Array.from({ length: 60 }, (_, i): GenerateRequest[] => [{ prompt: `shape ${i % 3}`, seeds: [5000 + i, 6000 + i] }]);
    const calls = requests.map((r) => gateway.generate(r));
    await afterSettled(calls, 10);
    await stop(nats, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    nats = await startNats(port, join(dir, 'store'));
    const answers = await Promise.all(calls);
    await expectMatchesReference(requests, answers);
  }, 90_000);

  it('sleep and wake reach every worker with one acknowledgement each; collectiveRpc answers per worker; GET /fleet data lists them', async () => {
    const states = await gateway.collectiveRpc('getState');
    expect(states.map((s) => s.weightsVersion)).toEqual([1, 1, 1]);
    await gateway.executeMethod('sleep', { level: 1 });
    expect((await gateway.executeMethod('getState')).state).toBe('sleeping');
    await gateway.executeMethod('wakeUp');
    const status = await gateway.status();
    expect(status.workers.map((w) => [w.id, w.state, w.device])).toEqual([['w0', 'ready', 'cpu'], ['w2', 'ready', 'cpu'], ['w3', 'ready', 'cpu']]);
    expect((await gateway.generate([{ prompt: 'after wake', seed: 1 }])).length).toBe(1);
  }, 30_000);

  it('the gateway answers the HTTP API as a server over one worker does: same rollout bytes; GET /fleet lists the workers', async () => {
    const [viaFleet, direct] = await Promise.all([buildServer(gateway, { maxBatchSize: 1024 }), buildServer(reference)]);
    fleetRoutes(viaFleet.app, gateway);
    try {
      const payload = [{ prompt: 'a red circle', seeds: [1, 2, 3] }, { prompt: 'green', seed: 4, numOutputsPerPrompt: 2, guidanceScale: 1 }];
      const [a, b] = await Promise.all([viaFleet, direct].map((s) => s.app.inject({ method: 'POST', url: '/v1/rollouts', payload })));
      expect(a.statusCode).toBe(200);
      expect(Buffer.compare(a.rawPayload, b.rawPayload)).toBe(0);
      const bad = [{ prompt: 'a', seed: 1 }, { prompt: 'b', seed: 2, steps: 0 }];
      const [refused, alone] = await Promise.all([viaFleet, direct].map((s) => s.app.inject({ method: 'POST', url: '/v1/rollouts', payload: bad })));
      expect([refused.statusCode, refused.json()]).toEqual([alone.statusCode, alone.json()]);
      expect(refused.json().error.message).toMatch(/^request 1: steps must be a positive integer, got 0/);
      const fleet = (await viaFleet.app.inject('/fleet')).json();
      expect(fleet.workers.map((w: { id: string; weightsVersion: number }) => [w.id, w.weightsVersion])).toEqual([['w0', 1], ['w2', 1], ['w3', 1]]);
    } finally {
      await Promise.all([viaFleet.close(), direct.close()]);
    }
  }, 30_000);

  it('omni-worker serve --fleet --nats URL serves the fleet over HTTP (GET /fleet, rollouts) and stops on SIGTERM', async () => {
    const serve = spawn(process.execPath, [BIN, 'serve', '--fleet', '--nats', url(), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    serve.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    serve.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await expect.poll(() => /serving on (http:\/\/\S+)/.exec(out)?.[1], { timeout: 20_000 }).toBeDefined();
      const address = /serving on (http:\/\/\S+)/.exec(out)![1];
      const fleet = await (await fetch(`${address}/fleet`)).json() as { workers: { id: string }[]; weightsVersion: number };
      expect([fleet.weightsVersion, fleet.workers.map((w) => w.id)]).toEqual([1, ['w0', 'w2', 'w3']]);
      const r = await fetch(`${address}/v1/rollouts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ prompt: 'green', seeds: [7, 8] }]) });
      expect(r.status).toBe(200);
      expectSameRollout(RolloutBatch.fromSafetensors(new Uint8Array(await r.arrayBuffer())), await reference.generate([{ prompt: 'green', seeds: [7, 8] }]));
    } finally {
      await stop(serve);
    }
    expect(serve.exitCode).toBe(0);
  }, 40_000);

  it('a part whose every delivery goes unanswered: after maxDeliveries the caller gets an error naming its requests', async () => {
    await Promise.all(workers.map((w) => stop(w.proc)));
    // A consumer that takes each delivery and never acknowledges it: workers dying with the part.
    const nc = await connect({ servers: url() });
    const consumer = await jetstream(nc).consumers.get(ROLLOUT_STREAM, ROLLOUT_CONSUMER);
    let deliveries = 0;
    const call = gateway.generate([{ prompt: 'a', seed: 1 }, { prompt: 'b', seed: 2 }, { prompt: 'c', seed: 3 }]);
    let settled = false;
    const refusal = call.then(() => 'answered', (e: Error) => e.message).finally(() => { settled = true; });
    const taker = (async () => {
      while (!settled) {
        const m = await consumer.next({ expires: 1000 });
        if (m) deliveries++;
      }
    })();
    expect(await refusal).toMatch(/^requests? [0-2](-[1-2])?: not answered: delivered 4 times \(maxDeliveries\), each time its worker died or stalled past ackWaitMs \(1500 ms\)$/);
    await taker;
    await nc.close();
    expect(deliveries).toBe(8); // two parts, four deliveries each
  }, 30_000);

  it('with no worker registered the gateway says so; a worker that joins serves the committed version from its first part', async () => {
    await expect(gateway.waitForWorker(300)).rejects.toThrow('no fleet worker registered within 300 ms (start one: omni-worker fleet-worker --nats URL)');
    await expect(gateway.executeMethod('sleep', { level: 1 })).rejects.toThrow(/^sleep: no fleet worker is registered/);
    workers.push(await startFleetWorker(url(), configFile(), 'late', FLEET));
    await gateway.waitForWorker(10_000);
    expect((await gateway.status()).workers.map((w) => [w.id, w.weightsVersion])).toEqual([['late', 1]]);
    const requests = [{ prompt: 'late', seeds: [1, 2, 3] }];
    const r = await gateway.generate(requests);
    expect(r.metaInfo.weights_version).toBe(1);
    expectSameRollout(r, await reference.generate(requests));
  }, 30_000);

  it('a version a worker cannot apply is applied nowhere, not in part: it keeps serving its last whole version, and the next version builds on that', async () => {
    const next = asRecord(dummyWeights(11).transformer);
    const names = Object.keys(next);
    const some = (keep: (i: number) => boolean) => Object.fromEntries(names.filter((_, i) => keep(i)).map((n) => [n, next[n]]));
    // Two objects: a valid bucket (its tensors may be staged before the other is refused) and a wrong shape.
    await gateway.executeMethod('loadWeights', { source: some((i) => i % 2 === 0), bucket: true });
    await gateway.executeMethod('loadWeights', { source: { [names[1]]: { dtype: 'F32', shape: [3], data: new Float32Array(3) } }, bucket: true });
    await expect(gateway.executeMethod('finishWeightUpdate')).rejects.toThrow(new RegExp(`^finishWeightUpdate: version 2 is committed, but worker late could not apply it \\(.*${names[1]}`));
    expect((await gateway.status()).workers.map((w) => [w.id, w.weightsVersion, w.weightsError?.version])).toEqual([['late', 1, 2]]);
    const requests = [{ prompt: 'after a refused version', seeds: [1, 2] }];
    const r = await gateway.generate(requests);
    expect(r.metaInfo.weights_version).toBe(1);
    expectSameRollout(r, await reference.generate(requests));
    // Version 3 updates the other half; on the worker it lands on version 1, with nothing of version 2.
    const rest = some((i) => i % 2 === 1);
    expect((await gateway.executeMethod('loadWeights', { source: rest })).weightsVersion).toBe(3);
    await reference.executeMethod('loadWeights', { source: rest });
    const after = await gateway.generate(requests);
    expect(after.metaInfo.weights_version).toBe(3);
    expectSameRollout(after, await reference.generate(requests));
  }, 30_000);
});
