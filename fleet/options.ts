// Timings and bounds of the fleet, shared by the gateway and the workers. Whoever creates the
// streams and buckets first fixes their settings (ackWaitMs, maxDeliveries, registryTtlMs).
import { z } from 'zod';
import { parseOrThrow } from '../core/validation.ts';

export const fleetOptionsSchema = z.object({
  /** A part not acknowledged within this goes to another worker (workers extend it while they run). */
  ackWaitMs: z.number().int().positive().default(30_000),
  /** Deliveries of one part before the caller gets an error naming it. */
  maxDeliveries: z.number().int().min(1).default(5),
  /** Worker heartbeat period; a registry entry lives registryTtlMs after its last heartbeat. */
  heartbeatMs: z.number().int().positive().default(2_000),
  registryTtlMs: z.number().int().positive().default(10_000),
  /** Samples per part of a generate call (the unit of work a worker pulls). */
  partSamples: z.number().int().positive().default(16),
  /** Results and control payloads over this go through the object store. */
  maxMessageBytes: z.number().int().positive().default(512 * 1024),
  /**
   * Chunk size of object store writes (weights, large results); each chunk is one message, so the
   * server's max_payload caps it. 1 MiB (nats-server's default max_payload): larger chunks cost a
   * reader more CPU, not less (BENCHMARKS.md, "Weights propagation").
   */
  objectChunkBytes: z.number().int().positive().default(1024 * 1024),
  /** How long finishWeightUpdate waits for every live worker to serve the new version. */
  weightSyncTimeoutMs: z.number().int().positive().default(120_000),
  /** How long a broadcast waits for the workers' acknowledgements. */
  controlTimeoutMs: z.number().int().positive().default(60_000),
  /** How long the gateway keeps retrying to publish a part while the server is unreachable. */
  publishRetryMs: z.number().int().positive().default(60_000),
}).strict();

export type FleetOptionsInput = z.input<typeof fleetOptionsSchema>;
export type FleetOptions = z.output<typeof fleetOptionsSchema>;

/** Checked before any work (model load, connection); errors name the key. */
export function parseFleetOptions(input: unknown): FleetOptions {
  return parseOrThrow(fleetOptionsSchema, input ?? {}, 'omni-worker fleet', 'fleet options');
}
