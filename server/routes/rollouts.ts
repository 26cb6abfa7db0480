// POST /v1/rollouts: a JSON list of requests -> the caller's RolloutBatch, as the safetensors
// file RolloutBatch.save writes (default) or, with ?format=json, as JSON for small batches.
// Calls go through the coalescer: concurrent callers share generate calls.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateRequest, RolloutBatch } from '../../core/public.ts';
import type { ServerContext } from '../context.ts';
import { HttpError, workerError } from '../http-error.ts';

export const requestsSchema = {
  type: 'array',
  minItems: 1,
  items: {
    type: 'object',
    required: ['prompt'],
    properties: { prompt: { type: 'string' }, negativePrompt: { type: 'string' } },
  },
} as const;

/** A signal that fires when the caller goes away before its answer is sent. */
export function disconnectSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
  request.raw.once('aborted', () => ac.abort());
  return ac.signal;
}

/** The caller's rollout through the coalescer; errors as HTTP errors, counted. */
export async function rollout(ctx: ServerContext, requests: GenerateRequest[], signal: AbortSignal): Promise<RolloutBatch> {
  try {
    const batch = await ctx.coalescer.submit(requests, signal);
    ctx.metrics.rollouts.inc({ outcome: 'ok' });
    ctx.metrics.samples.inc(batch.length);
    ctx.metrics.noteVersion(batch.metaInfo.weights_version);
    return batch;
  } catch (e) {
    const err = e instanceof HttpError ? e : workerError(e);
    ctx.metrics.rollouts.inc({ outcome: String(err.status) });
    throw err;
  }
}

function asJson(batch: RolloutBatch, limit: number) {
  let bytes = 0;
  for (const t of Object.values(batch.batch)) bytes += t.data.byteLength;
  if (bytes > limit) {
    throw new HttpError(413, 'format', `the rollout holds ${bytes} tensor bytes, over the ${limit} a ?format=json answer may hold: ask for safetensors (the default)`);
  }
  return {
    batch: Object.fromEntries(Object.entries(batch.batch).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: Array.from(t.data as ArrayLike<number | bigint>, Number) }])),
    non_tensor_batch: batch.nonTensorBatch,
    meta_info: batch.metaInfo,
  };
}

export function rolloutRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: GenerateRequest[]; Querystring: { format: 'safetensors' | 'json' } }>('/v1/rollouts', {
    bodyLimit: ctx.options.bodyLimits.json,
    schema: {
      body: requestsSchema,
      querystring: { type: 'object', properties: { format: { type: 'string', enum: ['safetensors', 'json'], default: 'safetensors' } }, additionalProperties: false },
    },
  }, async (request, reply) => {
    const batch = await rollout(ctx, request.body, disconnectSignal(request, reply));
    if (request.query.format === 'json') return asJson(batch, ctx.options.maxJsonRolloutBytes);
    // Sent chunk by chunk (header, then each tensor's own bytes): a rollout of many MB is never
    // copied into one buffer.
    const chunks = batch.toSafetensorsChunks();
    const length = chunks.reduce((n, c) => n + c.byteLength, 0);
    const body = Readable.from(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)), { objectMode: false });
    return reply.type('application/octet-stream').header('content-length', length).send(body);
  });
}
