// The server's options, checked in one place (core's error format): where it listens, who may
// call it, how calls merge and queue, and how large each route's body may be.
import { tmpdir } from 'node:os';
import { z } from 'zod';
import { parseOrThrow } from '../core/public.ts';

const MiB = 1 << 20;
const GiB = 1 << 30;

export const serveOptionsSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8000),
  /** Bearer token every route but /health asks for; required off loopback. */
  token: z.string().min(8).optional(),
  /** How long an idle worker waits for other rollout calls to join the first, in ms. */
  coalesceMs: z.number().min(0).max(10_000).default(20),
  /** Samples one merged generate call may hold; the worker's maxBatchSize when absent. */
  maxBatchSize: z.number().int().positive().optional(),
  /** Samples waiting at most before 429. */
  maxQueuedSamples: z.number().int().positive().default(1024),
  /** Folders /update_weights_from_path may read from (and collective_rpc loadWeights paths). */
  weightRoots: z.array(z.string().min(1)).default(['/dev/shm', tmpdir()]),
  bodyLimits: z.strictObject({
    /** JSON bodies: rollout requests, RPC arguments without tensors. */
    json: z.number().int().positive().default(16 * MiB),
    /** Safetensors bodies of /update_weights (streamed, never held whole). */
    weights: z.number().int().positive().default(256 * GiB),
    /** Adapter and RPC safetensors bodies (held in memory). */
    tensors: z.number().int().positive().default(4 * GiB),
  }).prefault({}),
  /** Tensor bytes per hand-over to the worker while a /update_weights body arrives (a few MiB: the
   *  worker stages them while the socket delivers the rest). */
  weightGroupBytes: z.number().int().positive().default(4 * MiB),
  /** A ?format=json rollout larger than this many tensor bytes is refused (use safetensors). */
  maxJsonRolloutBytes: z.number().int().positive().default(64 * MiB),
  /** Seconds SIGTERM waits for work in flight before closing the worker anyway. */
  shutdownGraceSeconds: z.number().positive().default(600),
});

export type ServeOptionsInput = z.input<typeof serveOptionsSchema>;
export type ServeOptions = z.output<typeof serveOptionsSchema>;

export function parseServeOptions(input: unknown): ServeOptions {
  return parseOrThrow(serveOptionsSchema, input ?? {}, 'omni-worker serve', 'options');
}

/** Loopback addresses: the only ones served without a token. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
