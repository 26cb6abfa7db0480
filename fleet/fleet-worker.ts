// A fleet worker: one omni-worker (one device, or data parallel) serving the fleet. It pulls parts
// from the rollout work queue, stores each result in the result stream before acknowledging the
// part (a worker that dies leaves it unacknowledged, so it is redelivered), applies each
// committed weights version before taking more work, answers control calls, and keeps its
// registry entry alive with heartbeats.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { headers as natsHeaders, type Msg, type Subscription } from '@nats-io/transport-node';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { KvWatchEntry } from '@nats-io/kv';
import { createWorker, type OmniWorker } from '../index.ts';
import type { WorkerConfig, WorkerConfigInput } from '../core/config/schema.ts';
import type { GenerateRequest } from '../core/protocol.ts';
import { connectFleet, type Fleet } from './connection.ts';
import { decodeValue, encodeValue, pack, unpack, type ControlAnswer, type ControlCall } from './codec.ts';
import { CONTROL_SUBJECT, H, ROLLOUT_CONSUMER, ROLLOUT_STREAM, WEIGHTS_KEY, workerSubject } from './names.ts';
import { parseFleetOptions, type FleetOptions, type FleetOptionsInput } from './options.ts';
import type { PartMessage, RegistryEntry, WeightsRecord } from './records.ts';
import { publishWithRetry } from './publish.ts';
import { applyWeightsVersion } from './weights-apply.ts';

export interface FleetWorkerOptions {
  /** NATS server URL(s), comma-separated. */
  nats: string;
  config?: WorkerConfigInput | WorkerConfig | string;
  fleet?: FleetOptionsInput;
  /** Registry id; host-pid-random by default. */
  id?: string;
  /** Called when the inference worker is gone for good (the CLI exits so a supervisor restarts it). */
  onFatal?: (e: Error) => void;
}

export class FleetWorker {
  /** The fleet weights version this worker serves (0: the weights it loaded). */
  private version = 0;
  private failedVersion: { version: number; error: string } | undefined;
  /** The weights application in progress, if any. */
  private applying: Promise<void> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private asleep = false;
  private closing = false;
  private parts = 0;
  private readonly startedAt = new Date().toISOString();
  private heartbeat: NodeJS.Timeout | undefined;
  private subscriptions: Subscription[] = [];
  private loop: Promise<void> | undefined;
  private methods: string[] = [];
  /** Read at start and after control calls: a heartbeat never waits behind a rollout in the inference thread. */
  private state: { state: string; model: string; plugins: string[] } = { state: 'loading', model: '', plugins: [] };

  private constructor(
    readonly id: string,
    private readonly fleet: Fleet,
    private readonly worker: OmniWorker,
    private readonly options: FleetOptions,
    private readonly onFatal: (e: Error) => void,
  ) {}

  static async start(o: FleetWorkerOptions): Promise<FleetWorker> {
    const options = parseFleetOptions(o.fleet);
    const id = o.id ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    // The server first: an unreachable fleet is reported before a model is loaded.
    const fleet = await connectFleet(o.nats, `omni-worker ${id}`, options);
    let worker: OmniWorker;
    try {
      worker = await createWorker(o.config);
    } catch (e) {
      await fleet.nc.close();
      throw e;
    }
    const fw = new FleetWorker(id, fleet, worker, options, o.onFatal ?? (() => undefined));
    fw.methods = await worker.executeMethod('listMethods');
    fw.state = await worker.executeMethod('getState');
    // The committed version first: no part runs on weights the fleet has moved past.
    await fw.catchUp();
    await fw.beat();
    fw.heartbeat = setInterval(() => void fw.beat().catch(() => undefined), options.heartbeatMs);
    fw.subscriptions = [CONTROL_SUBJECT, workerSubject(id)].map((s) => fleet.nc.subscribe(s, { callback: (err, m) => { if (!err) void fw.onControl(m); } }));
    void fw.watchWeights();
    const consumer = await fleet.js.consumers.get(ROLLOUT_STREAM, ROLLOUT_CONSUMER);
    fw.loop = fw.serve(consumer);
    return fw;
  }

  get weightsVersion(): number {
    return this.version;
  }

  /** Stops taking parts, finishes the one running, leaves the registry, closes the worker. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    await this.loop;
    for (const s of this.subscriptions) s.unsubscribe();
    await this.fleet.registry.delete(this.id).catch(() => undefined);
    await this.fleet.nc.drain().catch(() => undefined);
    await this.worker.close();
  }

  /** Runs `f` after everything queued before it: parts, weight updates and control calls never overlap. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async serve(consumer: Consumer): Promise<void> {
    while (!this.closing) {
      if (this.asleep) {
        await delay(100);
        continue;
      }
      let m: JsMsg | null;
      try {
        m = await consumer.next({ expires: 1000 });
      } catch {
        await delay(250); // the server is away: the client reconnects, this waits
        continue;
      }
      if (m) await this.runPart(m);
    }
  }

  private async runPart(m: JsMsg): Promise<void> {
    const id = m.headers?.get(H.requestId) ?? '';
    const reply = m.headers?.get(H.reply) ?? '';
    // Tells the server the part is in hand while it runs (ack_wait covers a stalled worker only).
    const alive = setInterval(() => m.working(), Math.max(100, Math.floor(this.options.ackWaitMs / 3)));
    const headers = natsHeaders();
    headers.set(H.requestId, id);
    headers.set(H.worker, this.id);
    let body: Uint8Array = new Uint8Array(0);
    try {
      const part = JSON.parse(new TextDecoder().decode(m.data)) as PartMessage;
      if (part.minVersion > this.version) await this.catchUp();
      const { rollout, version } = await this.serial(async () => ({ version: this.version, rollout: await this.worker.generate(part.requests as GenerateRequest[]) }));
      rollout.metaInfo.weights_version = version;
      headers.set(H.weightsVersion, String(version));
      ({ body } = await pack(this.fleet, `result/${id}`, rollout.toSafetensors(), this.options.maxMessageBytes, headers));
    } catch (e) {
      if (!(await this.alive())) {
        clearInterval(alive);
        m.nak(); // another worker takes it now
        this.onFatal(new Error(`fleet worker ${this.id}: the inference worker is gone: ${(e as Error).message}`));
        return;
      }
      headers.set(H.error, oneLine((e as Error).message)); // a refusal: redelivery would refuse again
    }
    clearInterval(alive);
    try {
      // Stored first, acknowledged after: a death between the two redelivers; the id dedupes.
      await publishWithRetry(this.fleet, reply, body, { headers, msgID: `result:${id}` }, this.options.publishRetryMs);
      this.parts++;
      await m.ackAck();
    } catch {
      // Not stored, or not acknowledged: the part is redelivered after ack_wait.
    }
  }

  private async alive(): Promise<boolean> {
    try {
      await this.worker.executeMethod('getState');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Applies the committed weights version when it is newer than the one served. One application
   * at a time: a caller meanwhile waits for it, and it looks again after each version it applied.
   */
  private catchUp(): Promise<void> {
    this.applying ??= this.applyLatest().finally(() => { this.applying = undefined; });
    return this.applying;
  }

  private async applyLatest(): Promise<void> {
    for (;;) {
      const entry = await this.fleet.weights.get(WEIGHTS_KEY).catch(() => null);
      if (!entry || entry.operation !== 'PUT') return;
      const record = entry.json<WeightsRecord>();
      if (record.version <= this.version || this.failedVersion?.version === record.version) return;
      try {
        // Downloads and stages while parts keep running on the version served; the commit
        // waits for the part in hand (no part runs on two versions).
        await applyWeightsVersion(this.fleet.blobs, this.worker, record, (commit) => this.serial(async () => {
          await commit();
          this.version = record.version;
        }));
        this.failedVersion = undefined;
      } catch (e) {
        this.failedVersion = { version: record.version, error: oneLine((e as Error).message) };
      }
      await this.beat();
    }
  }

  private async watchWeights(): Promise<void> {
    const watch = await this.fleet.weights.watch({ key: WEIGHTS_KEY }).catch(() => undefined);
    if (!watch) return;
    for await (const e of watch as AsyncIterable<KvWatchEntry>) {
      if (this.closing) break;
      if (e.operation === 'PUT') await this.catchUp().catch(() => undefined);
    }
  }

  private async beat(): Promise<void> {
    if (this.closing) return;
    const { state, model, plugins } = this.state;
    const entry: RegistryEntry = {
      id: this.id, host: hostname(), pid: process.pid, device: this.worker.config.devices?.join(',') ?? this.worker.config.device,
      threads: this.worker.config.threads ?? null, weightsVersion: this.version, state,
      model, plugins, methods: this.methods, parts: this.parts, startedAt: this.startedAt, heartbeatAt: new Date().toISOString(),
      ...(this.failedVersion ? { weightsError: this.failedVersion } : {}),
    };
    await this.fleet.registry.put(this.id, JSON.stringify(entry));
  }

  private async onControl(m: Msg): Promise<void> {
    let answer: ControlAnswer;
    try {
      const call = decodeValue<ControlCall>(await unpack(this.fleet, m.data, m.headers, true));
      const value = await this.serial(async () => {
        const v = await this.worker.executeMethod(call.method, ...call.args);
        this.state = await this.worker.executeMethod('getState');
        this.asleep = this.state.state === 'sleeping';
        return v;
      });
      answer = { worker: this.id, ok: true, value, weightsVersion: this.version };
    } catch (e) {
      answer = { worker: this.id, ok: false, error: oneLine((e as Error).message) };
    }
    // The registry shows the new state before the gateway hears the acknowledgement.
    await this.beat().catch(() => undefined);
    const packed = await pack(this.fleet, `answer/${randomUUID()}`, encodeValue(answer), this.options.maxMessageBytes).catch(() => undefined);
    if (packed) m.respond(packed.body, { headers: packed.headers });
  }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Header values are one line. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}
