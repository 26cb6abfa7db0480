// The gateway's side of the fleet, behind the same interface as one worker (OmniWorker), so the
// HTTP routes serve a fleet as they serve a local worker. generate splits a call into parts on the
// rollout work queue and merges the answers in request order; weights are staged here and
// committed as one fleet version (object store + KV); sleep, wake, LoRA and collectiveRpc are
// broadcast on the control subject with one acknowledgement per worker.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { headers as natsHeaders, type Subscription } from '@nats-io/transport-node';
import { DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import type { OmniWorker } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import type { WorkerConfig, WorkerConfigInput } from '../core/config/schema.ts';
import { WorkerEvents } from '../core/events.ts';
import { COMPONENT_NAMES } from '../core/model/manifest.ts';
import type { GenerateRequest, RolloutData } from '../core/protocol.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import { parseSafetensors, serializeSafetensors } from '../core/tensors/safetensors.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import { BROADCAST_METHODS } from '../core/executor/data-parallel.ts';
import { mergeParts, originError, splitBySize, type CallPart } from '../core/executor/sample-split.ts';
import { connectFleet, type Fleet } from './connection.ts';
import { decodeValue, encodeValue, pack, unpack, type ControlAnswer } from './codec.ts';
import { CONTROL_SUBJECT, H, MAX_DELIVERIES_ADVISORY, REGISTRY_BUCKET, RESULT_STREAM, resultSubject, ROLLOUT_STREAM, ROLLOUT_SUBJECT, WEIGHTS_KEY, workerSubject } from './names.ts';
import { parseFleetOptions, type FleetOptions, type FleetOptionsInput } from './options.ts';
import { publishWithRetry } from './publish.ts';
import type { RegistryEntry, WeightsRecord } from './records.ts';

export interface FleetClientOptions {
  nats: string;
  /** The config the gateway checks calls against (limits); the workers have their own. */
  config?: WorkerConfigInput | WorkerConfig | string;
  fleet?: FleetOptionsInput;
}

export interface FleetStatus {
  gateway: string;
  weightsVersion: number;
  workers: RegistryEntry[];
}

interface PendingPart {
  /** The caller's requests in the part, for errors ('request 3', 'requests 3-4'). */
  names: string;
  resolve: (r: { rollout: RolloutData; version: number }) => void;
  reject: (e: Error) => void;
}

/** Attempts at one version per rollout, when a weight update lands between a call's parts. */
const VERSION_ROUNDS = 3;
const WEIGHT_METHODS = new Set(['loadWeights', 'finishWeightUpdate', 'abortWeightUpdate']);

export class FleetClient implements OmniWorker {
  readonly events = new WorkerEvents();
  readonly gatewayId = randomUUID().slice(0, 12);
  /** Answers that arrived for a part already answered (redeliveries): dropped, never passed on. */
  duplicates = 0;
  private readonly pending = new Map<string, PendingPart>();
  private readonly partBySeq = new Map<number, string>();
  private staged: { component: string; bytes: Uint8Array; tensors: number }[] = [];
  /** Uploads in progress (loadWeights with `upload`: an HTTP body's pieces), closed by finish or abort with { upload }. */
  private readonly uploads = new Map<string, { component: string; bytes: Uint8Array; tensors: number }[]>();
  private version = 0;
  private results: ConsumerMessages | undefined;
  private advisories: Subscription | undefined;
  private nextCall = 0;
  private nextOne = 0;

  private constructor(readonly config: WorkerConfig, private readonly fleet: Fleet, private readonly options: FleetOptions) {}

  static async connect(o: FleetClientOptions): Promise<FleetClient> {
    const options = parseFleetOptions(o.fleet);
    const config = resolveConfig(o.config);
    const client = new FleetClient(config, await connectFleet(o.nats, 'omni-worker gateway', options), options);
    const current = await client.fleet.weights.get(WEIGHTS_KEY);
    if (current?.operation === 'PUT') client.version = current.json<WeightsRecord>().version;
    await client.listen();
    return client;
  }

  /** Workers with a live registry entry, weights versions and devices (GET /fleet). */
  async status(): Promise<FleetStatus> {
    return { gateway: this.gatewayId, weightsVersion: this.version, workers: await this.liveWorkers() };
  }

  async generate(requests: GenerateRequest[]): Promise<RolloutBatch> {
    const parts = splitBySize(requests, this.options.partSamples, this.config.limits);
    const call = `${this.gatewayId}-${this.nextCall++}`;
    let answers = await Promise.all(parts.map((p, i) => this.runPart(`${call}-${i}`, p, this.version)));
    // One weights version per rollout: parts that ran before an update run again on it.
    for (let round = 1; round <= VERSION_ROUNDS; round++) {
      const newest = Math.max(...answers.map((a) => a.version));
      const stale = answers.map((a, i) => (a.version < newest ? i : -1)).filter((i) => i >= 0);
      if (!stale.length) break;
      if (round === VERSION_ROUNDS) throw new Error(`generate: the weights version kept changing during the call (${VERSION_ROUNDS} rounds); call again`);
      const again = await Promise.all(stale.map((i) => this.runPart(`${call}-${i}-v${newest}`, parts[i], newest)));
      answers = answers.map((a, i) => (stale.includes(i) ? again[stale.indexOf(i)] : a));
    }
    const merged = mergeParts(parts, answers.map((a) => a.rollout));
    return new RolloutBatch({ ...merged, metaInfo: { ...merged.metaInfo, weights_version: answers[0].version } });
  }

  executeMethod = ((name: string, ...args: unknown[]): Promise<unknown> => this.call(name, args)) as OmniWorker['executeMethod'];

  /** Buffers cannot move to other hosts: the same as executeMethod. */
  executeMethodTransfer = ((name: string, args: unknown[]) => this.call(name, args)) as OmniWorker['executeMethodTransfer'];

  collectiveRpc = (async (name: string, args: unknown[] = []) => {
    if (WEIGHT_METHODS.has(name)) return [await this.call(name, args)];
    return (await this.broadcast(name, args)).map((a) => a.value);
  }) as OmniWorker['collectiveRpc'];

  async close(): Promise<void> {
    this.results?.stop();
    this.advisories?.unsubscribe();
    for (const p of this.pending.values()) p.reject(new Error('the fleet client is closed'));
    this.pending.clear();
    await this.fleet.nc.drain().catch(() => undefined);
  }

  private async call(name: string, args: unknown[]): Promise<unknown> {
    switch (name) {
      case 'generate': {
        const b = await this.generate(args[0] as GenerateRequest[]);
        return { batch: b.batch, nonTensorBatch: b.nonTensorBatch, metaInfo: b.metaInfo };
      }
      case 'listMethods': return (await this.someWorker('listMethods')).methods;
      case 'getState': {
        const w = await this.someWorker('getState');
        const asleep = (await this.liveWorkers()).some((e) => e.state !== 'ready');
        return { state: asleep ? 'sleeping' : 'ready', weightsVersion: this.version, plugins: w.plugins ?? [], model: w.model };
      }
      case 'loadWeights': return this.loadWeights(args[0], args[1]);
      case 'finishWeightUpdate': return this.finishUpload(args[0] as { upload?: string; bucket?: boolean } | undefined);
      case 'abortWeightUpdate': {
        const upload = (args[0] as { upload?: string } | undefined)?.upload;
        if (upload !== undefined) {
          const dropped = (this.uploads.get(upload) ?? []).reduce((n, s) => n + s.tensors, 0);
          this.uploads.delete(upload);
          return { dropped, weightsVersion: this.version };
        }
        const dropped = this.staged.reduce((n, s) => n + s.tensors, 0);
        this.staged = [];
        return { dropped, weightsVersion: this.version };
      }
      default:
        if (BROADCAST_METHODS.has(name)) return (await this.broadcast(name, args))[0].value;
        return this.onOne(name, args);
    }
  }

  private async listen(): Promise<void> {
    const consumer = await this.fleet.js.consumers.get(RESULT_STREAM, { filter_subjects: resultSubject(this.gatewayId), deliver_policy: DeliverPolicy.New });
    // Short pulls: a server restart is noticed (missed heartbeats) within seconds, not half a minute.
    this.results = await consumer.consume({ expires: 2_000 });
    void (async () => {
      for await (const m of this.results!) {
        const id = m.headers?.get(H.requestId) ?? '';
        const p = this.pending.get(id);
        if (!p) {
          this.duplicates++;
          continue;
        }
        this.pending.delete(id);
        const error = m.headers?.get(H.error);
        if (error) {
          p.reject(new Error(error));
          continue;
        }
        try {
          const bytes = await unpack(this.fleet, m.data, m.headers);
          const batch = RolloutBatch.fromSafetensors(bytes);
          p.resolve({ rollout: { batch: batch.batch, nonTensorBatch: batch.nonTensorBatch, metaInfo: batch.metaInfo }, version: Number(m.headers?.get(H.weightsVersion)) });
        } catch (e) {
          p.reject(e as Error);
        }
      }
    })();
    this.advisories = this.fleet.nc.subscribe(MAX_DELIVERIES_ADVISORY, {
      callback: (err, m) => {
        if (err) return;
        const { stream_seq: seq, deliveries } = m.json<{ stream_seq: number; deliveries: number }>();
        const id = this.partBySeq.get(seq);
        const p = id ? this.pending.get(id) : undefined;
        if (!id || !p) return;
        this.pending.delete(id);
        this.partBySeq.delete(seq);
        void this.fleet.jsm.streams.deleteMessage(ROLLOUT_STREAM, seq).catch(() => undefined);
        p.reject(new Error(`${p.names}: not answered: delivered ${deliveries} times (maxDeliveries), each time its worker died or stalled past ackWaitMs (${this.options.ackWaitMs} ms)`));
      },
    });
  }

  /** One part on the work queue; settles with its answer. Accepted = stored by JetStream. */
  private async runPart(id: string, part: CallPart, minVersion: number): Promise<{ rollout: RolloutData; version: number }> {
    const first = part.origin[0];
    const last = part.origin.at(-1)!;
    const names = first === last ? `request ${first}` : `requests ${first}-${last}`;
    const answer = new Promise<{ rollout: RolloutData; version: number }>((resolve, reject) => this.pending.set(id, { resolve, reject, names }));
    const headers = natsHeaders();
    headers.set(H.requestId, id);
    headers.set(H.reply, resultSubject(this.gatewayId));
    const body = new TextEncoder().encode(JSON.stringify({ requests: part.requests, minVersion }));
    try {
      const ack = await publishWithRetry(this.fleet, ROLLOUT_SUBJECT, body, { headers, msgID: id }, this.options.publishRetryMs);
      this.partBySeq.set(ack.seq, id);
    } catch (e) {
      this.pending.delete(id);
      throw e;
    }
    try {
      return await answer;
    } catch (e) {
      throw originError(e, part);
    } finally {
      for (const [seq, pid] of this.partBySeq) if (pid === id) this.partBySeq.delete(seq);
    }
  }

  private async loadWeights(a: unknown, options: unknown): Promise<unknown> {
    if (a === null || typeof a !== 'object') throw new Error('loadWeights needs { component?, source, bucket? }');
    const { component = 'transformer', source, bucket, upload } = a as { component?: unknown; source?: unknown; bucket?: unknown; upload?: unknown };
    if (typeof component !== 'string' || !(COMPONENT_NAMES as readonly string[]).includes(component)) {
      throw new Error(`loadWeights: unknown component ${JSON.stringify(component)} (known: ${COMPONENT_NAMES.join(', ')})`);
    }
    const bytes = typeof source === 'string' ? new Uint8Array(await readFile(source))
      : source instanceof Uint8Array ? source
        : source && typeof source === 'object' ? serializeSafetensors(source as Record<string, HostTensor>)
          : undefined;
    if (!bytes) throw new Error('loadWeights: source must be a .safetensors path, safetensors bytes, or named tensors');
    const tensors = parseSafetensors(bytes).names.length;
    if (typeof upload === 'string') {
      const pieces = this.uploads.get(upload) ?? [];
      pieces.push({ component, bytes, tensors });
      this.uploads.set(upload, pieces);
      return { weightsVersion: this.version, component, tensors, bytes: bytes.byteLength, staged: true, stagedTensors: this.staged.reduce((n, s) => n + s.tensors, 0) };
    }
    this.staged.push({ component, bytes, tensors });
    const staged = Boolean(bucket ?? (options as { bucket?: boolean } | undefined)?.bucket);
    if (!staged) await this.finishWeightUpdate();
    return { weightsVersion: this.version, component, tensors, bytes: bytes.byteLength, staged, stagedTensors: this.staged.reduce((n, s) => n + s.tensors, 0) };
  }

  /** finishWeightUpdate, or for one upload: its pieces committed alone, or added to the buckets (bucket). */
  private async finishUpload(args: { upload?: string; bucket?: boolean } | undefined): Promise<unknown> {
    if (args?.upload === undefined) return this.finishWeightUpdate();
    const pieces = this.uploads.get(args.upload) ?? [];
    this.uploads.delete(args.upload);
    const stagedTensors = () => this.staged.reduce((n, s) => n + s.tensors, 0);
    if (args.bucket) {
      this.staged.push(...pieces);
      const tensors = pieces.reduce((n, s) => n + s.tensors, 0);
      return { weightsVersion: this.version, committed: tensors ? { [pieces[0].component]: tensors } : {}, tensors, stagedTensors: stagedTensors() };
    }
    // finishWeightUpdate takes this.staged before its first await: the buckets stay staged.
    const buckets = this.staged;
    this.staged = pieces;
    const done = this.finishWeightUpdate();
    this.staged = buckets;
    return { ...(await done) as object, stagedTensors: stagedTensors() };
  }

  /**
   * Commits the staged buckets as the next fleet version (objects first, then the KV record) and
   * returns once every live worker serves it; a timeout names the workers still behind.
   */
  private async finishWeightUpdate(): Promise<unknown> {
    const staged = this.staged;
    this.staged = [];
    const committed: Record<string, number> = {};
    for (const s of staged) committed[s.component] = (committed[s.component] ?? 0) + s.tensors;
    const tensors = staged.reduce((n, s) => n + s.tensors, 0);
    if (!staged.length) return { weightsVersion: this.version, committed, tensors, workers: (await this.liveWorkers()).map((w) => w.id) };
    const version = this.version + 1;
    const objects: WeightsRecord['objects'] = [];
    for (const [i, s] of staged.entries()) {
      const name = `weights/v${version}/${i}-${s.component}.safetensors`;
      await this.fleet.putObject(name, s.bytes);
      objects.push({ name, component: s.component, tensors: s.tensors, bytes: s.bytes.byteLength });
    }
    const record: WeightsRecord = { version, objects, committedAt: new Date().toISOString() };
    await this.fleet.weights.put(WEIGHTS_KEY, JSON.stringify(record));
    this.version = version;
    void this.dropOldWeights(version);
    const workers = await this.waitForVersion(version);
    return { weightsVersion: version, committed, tensors, workers };
  }

  private async waitForVersion(version: number): Promise<string[]> {
    const deadline = Date.now() + this.options.weightSyncTimeoutMs;
    for (;;) {
      const live = await this.liveWorkers();
      const failed = live.filter((w) => w.weightsError?.version === version);
      if (failed.length) {
        throw new Error(`finishWeightUpdate: version ${version} is committed, but ${failed.map((w) => `worker ${w.id} could not apply it (${w.weightsError!.error})`).join('; ')}`);
      }
      const behind = live.filter((w) => w.weightsVersion < version);
      if (!behind.length) return live.map((w) => w.id);
      if (Date.now() > deadline) {
        throw new Error(`finishWeightUpdate: version ${version} is committed, but after ${this.options.weightSyncTimeoutMs} ms these workers still serve older versions: ${behind.map((w) => `${w.id} (v${w.weightsVersion})`).join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Objects of versions before the previous one: no worker fetches them any more. */
  private async dropOldWeights(version: number): Promise<void> {
    for await (const info of await this.fleet.blobs.list().then((l) => l)) {
      const m = /^weights\/v(\d+)\//.exec(info.name);
      if (m && Number(m[1]) < version - 1) await this.fleet.blobs.delete(info.name).catch(() => undefined);
    }
  }

  /** Resolves once a worker is registered (the server reads the method list from one at start). */
  async waitForWorker(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.liveWorkers()).length) {
      if (Date.now() > deadline) throw new Error(`no fleet worker registered within ${timeoutMs} ms (start one: omni-worker fleet-worker --nats URL)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async liveWorkers(): Promise<RegistryEntry[]> {
    const out: RegistryEntry[] = [];
    // The bucket's subjects from one stream-info request, not registry.keys(): keys() runs a
    // consumer that nats-server 2.9 can leave waiting forever for an entry that expired (TTL)
    // meanwhile (nats-server issue 3481); the gateway asks this every 50 ms during a weights sync.
    const prefix = `$KV.${REGISTRY_BUCKET}.`;
    const info = await this.fleet.jsm.streams.info(`KV_${REGISTRY_BUCKET}`, { subjects_filter: `${prefix}>` });
    const keys = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
    for (const key of keys) {
      const e = await this.fleet.registry.get(key);
      if (e?.operation === 'PUT') out.push(e.json<RegistryEntry>());
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  private async someWorker(method: string): Promise<RegistryEntry> {
    const [w] = await this.liveWorkers();
    if (!w) throw new Error(`${method}: no fleet worker is registered (start one: omni-worker fleet-worker --nats URL)`);
    return w;
  }

  /** `method` on every live worker; one acknowledgement each, or an error naming who failed or is silent. */
  private async broadcast(method: string, args: unknown[]): Promise<Extract<ControlAnswer, { ok: true }>[]> {
    const live = await this.liveWorkers();
    if (!live.length) throw new Error(`${method}: no fleet worker is registered (start one: omni-worker fleet-worker --nats URL)`);
    const blob = `control/${randomUUID()}`;
    const payload = await pack(this.fleet, blob, encodeValue({ method, args }), this.options.maxMessageBytes);
    const answers: ControlAnswer[] = [];
    try {
      const replies = await this.fleet.nc.requestMany(CONTROL_SUBJECT, payload.body, {
        headers: payload.headers, maxWait: this.options.controlTimeoutMs, strategy: 'count', maxMessages: live.length,
      });
      for await (const m of replies) answers.push(decodeValue<ControlAnswer>(await unpack(this.fleet, m.data, m.headers)));
    } finally {
      if (payload.headers.get(H.object)) await this.fleet.blobs.delete(blob).catch(() => undefined);
    }
    const failed = answers.filter((a): a is Extract<ControlAnswer, { ok: false }> => !a.ok);
    if (failed.length) throw new Error(`${method} failed on ${failed.map((a) => `worker ${a.worker}: ${a.error}`).join('; ')}`);
    const silent = live.filter((w) => !answers.some((a) => a.worker === w.id));
    if (silent.length) throw new Error(`${method}: no acknowledgement within ${this.options.controlTimeoutMs} ms from ${silent.map((w) => w.id).join(', ')}`);
    return (answers as Extract<ControlAnswer, { ok: true }>[]).sort((a, b) => a.worker.localeCompare(b.worker));
  }

  /** A method that needs one answer (computeLogProbs, sleepState, listLoras, ...): one live worker. */
  private async onOne(method: string, args: unknown[]): Promise<unknown> {
    const live = await this.liveWorkers();
    if (!live.length) throw new Error(`${method}: no fleet worker is registered (start one: omni-worker fleet-worker --nats URL)`);
    const w = live[this.nextOne++ % live.length];
    const blob = `control/${randomUUID()}`;
    const payload = await pack(this.fleet, blob, encodeValue({ method, args }), this.options.maxMessageBytes);
    try {
      const m = await this.fleet.nc.request(workerSubject(w.id), payload.body, { headers: payload.headers, timeout: this.options.controlTimeoutMs });
      const a = decodeValue<ControlAnswer>(await unpack(this.fleet, m.data, m.headers));
      if (!a.ok) throw new Error(a.error);
      return a.value;
    } finally {
      if (payload.headers.get(H.object)) await this.fleet.blobs.delete(blob).catch(() => undefined);
    }
  }
}
