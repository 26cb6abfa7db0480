// The fleet's streams, buckets and subjects, in one place (docs/fleet.md lists them).
export const ROLLOUT_STREAM = 'OMNI_ROLLOUTS';
/** Work-queue subject: one message per part of a generate call. */
export const ROLLOUT_SUBJECT = 'omni.rollout';
/** The durable pull consumer every fleet worker shares (work-queue: each message to one worker). */
export const ROLLOUT_CONSUMER = 'workers';
export const RESULT_STREAM = 'OMNI_RESULTS';
/** Results for one gateway: omni.result.<gatewayId>. */
export const resultSubject = (gatewayId: string): string => `omni.result.${gatewayId}`;
/** Broadcast calls (sleep, wake, LoRA, collectiveRpc): every worker answers. */
export const CONTROL_SUBJECT = 'omni.control';
/** A call for one worker (methods that need one answer). */
export const workerSubject = (workerId: string): string => `omni.worker.${workerId}`;
/** KV: worker id -> registry entry, refreshed by heartbeats, gone after the bucket's TTL. */
export const REGISTRY_BUCKET = 'omni_workers';
/** KV: key 'current' -> the committed weights version and its objects. */
export const WEIGHTS_BUCKET = 'omni_weights';
export const WEIGHTS_KEY = 'current';
/** Object store: weights of each version, large results, large control payloads. */
export const BLOB_BUCKET = 'omni_blobs';
/** Advisory the server publishes when a rollout message used up its deliveries. */
export const MAX_DELIVERIES_ADVISORY = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${ROLLOUT_STREAM}.${ROLLOUT_CONSUMER}`;

/** Headers of rollout and result messages. */
export const H = {
  requestId: 'Omni-Request-Id',
  /** Where the part's result goes (the gateway's result subject). */
  reply: 'Omni-Reply',
  worker: 'Omni-Worker',
  weightsVersion: 'Omni-Weights-Version',
  /** The result lies in the object store under this name (too large for a message). */
  object: 'Omni-Object',
  /** The part was refused or failed: the error message (the body is empty). */
  error: 'Omni-Error',
} as const;
