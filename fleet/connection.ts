// The NATS connection and the fleet's JetStream resources, created when missing (gateway or
// worker, whichever comes first) and opened as they are otherwise.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { BLOB_BUCKET, REGISTRY_BUCKET, RESULT_STREAM, ROLLOUT_CONSUMER, ROLLOUT_STREAM, ROLLOUT_SUBJECT, WEIGHTS_BUCKET } from './names.ts';
import type { FleetOptions } from './options.ts';
import { useNodeDigest } from './object-digest.ts';

export interface Fleet {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  registry: KV;
  weights: KV;
  blobs: ObjectStore;
  /** Stores bytes as one object, in chunks of objectChunkBytes (the server's max_payload at most). */
  putObject(name: string, bytes: Uint8Array): Promise<void>;
}

const NANOS = 1_000_000;

/** Connects, reconnecting without end (a server restart is waited out, never fatal). */
export async function connectFleet(url: string, name: string, options: FleetOptions): Promise<Fleet> {
  useNodeDigest();
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, pingInterval: 5_000 });
  } catch (e) {
    throw new Error(`fleet: cannot connect to NATS at ${url}: ${(e as Error).message} (is nats-server -js running there?)`);
  }
  try {
    const jsm = await jetstreamManager(nc);
    await ensureStream(jsm, {
      name: ROLLOUT_STREAM, subjects: [ROLLOUT_SUBJECT], retention: RetentionPolicy.Workqueue, storage: StorageType.File,
      // Part ids dedupe a publish retried across a reconnect.
      duplicate_window: 120_000 * NANOS,
    });
    await ensureStream(jsm, { name: RESULT_STREAM, subjects: ['omni.result.*'], storage: StorageType.File, max_age: 15 * 60_000 * NANOS, duplicate_window: 120_000 * NANOS });
    if (!(await exists(() => jsm.consumers.info(ROLLOUT_STREAM, ROLLOUT_CONSUMER)))) {
      await jsm.consumers.add(ROLLOUT_STREAM, {
        durable_name: ROLLOUT_CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All,
        ack_wait: options.ackWaitMs * NANOS, max_deliver: options.maxDeliveries, max_ack_pending: -1,
      });
    }
    const kvm = new Kvm(nc);
    const objm = new Objm(nc);
    const blobs = await objm.create(BLOB_BUCKET, { storage: StorageType.File });
    return {
      nc, jsm, js: jetstream(nc), blobs,
      registry: await kvm.create(REGISTRY_BUCKET, { ttl: options.registryTtlMs, history: 1, storage: StorageType.File }),
      weights: await kvm.create(WEIGHTS_BUCKET, { history: 1, storage: StorageType.File }),
      // The library caps the chunk at the server's max_payload (1 MB unless configured).
      putObject: async (n, bytes) => { await blobs.putBlob({ name: n, options: { max_chunk_size: options.objectChunkBytes } }, bytes); },
    };
  } catch (e) {
    await nc.close();
    throw new Error(`fleet: cannot set up JetStream on ${url} (is nats-server running with -js?): ${(e as Error).message}`);
  }
}

async function exists(info: () => Promise<unknown>): Promise<boolean> {
  try {
    await info();
    return true;
  } catch (e) {
    if (/not found/i.test((e as Error).message)) return false;
    throw e;
  }
}

async function ensureStream(jsm: JetStreamManager, config: Parameters<JetStreamManager['streams']['add']>[0]): Promise<void> {
  if (!(await exists(() => jsm.streams.info(config.name!)))) await jsm.streams.add(config);
}
