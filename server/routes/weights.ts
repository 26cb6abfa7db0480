// Weight updates: a safetensors body streamed tensor by tensor (POST /update_weights, ?bucket=true
// stages), a file on this host (POST /update_weights_from_path), and the phases that close an
// update (POST /finish_weight_update, /abort_weight_update). A body's tensors move to the worker
// while the rest arrives, staged as an upload of their own: only a whole, valid body is committed
// (or, with ?bucket=true, added to the buckets); any failure drops the upload, so a broken body
// changes nothing.
import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import type { ComponentName, HostTensor } from '../../core/public.ts';
import { bodyLength } from '../body.ts';
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';

const componentQuery = {
  type: 'object', additionalProperties: false,
  properties: { component: { type: 'string' }, bucket: { type: 'string', enum: ['true', 'false'] } },
} as const;

export function weightRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Querystring: { component?: string; bucket?: 'true' | 'false' } }>('/update_weights', {
    schema: { querystring: componentQuery },
  }, async (request) => {
    ctx.need('loadWeights');
    if (!(request.headers['content-type'] ?? '').startsWith('application/octet-stream')) {
      throw new HttpError(415, 'content-type', 'POST /update_weights takes a safetensors body as application/octet-stream');
    }
    const length = bodyLength(request, ctx.options.bodyLimits.weights);
    const component = request.query.component as ComponentName | undefined;
    const upload = randomUUID();
    const staging: Promise<unknown>[] = [];
    let refused: unknown;
    let tensors = 0;
    const stage = (group: [string, HostTensor][]) => {
      tensors += group.length;
      // Each tensor has its own array: they move to the inference thread without a copy.
      const staged = ctx.call('loadWeights', [{ component, source: Object.fromEntries(group), upload }], group.map(([, t]) => t.data.buffer as ArrayBuffer));
      staged.catch((e) => { refused ??= e; }); // handled now (it stops the read), answered below
      staging.push(staged);
    };
    try {
      const { bytes } = await ctx.assembler.read(request.body as Readable, length, {
        groupBytes: ctx.options.weightGroupBytes, onGroup: stage, stop: () => refused !== undefined,
        // A socket's chunks are fresh buffers of their own; an injected request's may be the caller's.
        ownChunks: request.raw.socket instanceof Socket,
      });
      await Promise.allSettled(staging);
      if (refused !== undefined) throw refused;
      if (tensors === 0) stage([]); // the worker's own refusal of an empty update
      await Promise.allSettled(staging);
      if (refused !== undefined) throw refused;
      const done = await ctx.call<{ weightsVersion: number; stagedTensors: number }>('finishWeightUpdate', [{ upload, bucket: request.query.bucket === 'true' }]);
      ctx.metrics.weightBytes.inc(bytes);
      return { weightsVersion: done.weightsVersion, component: component ?? 'transformer', tensors, bytes, staged: request.query.bucket === 'true', stagedTensors: done.stagedTensors };
    } catch (e) {
      // Every piece handed over has settled before the drop: none lands after it.
      await Promise.allSettled(staging);
      await ctx.call('abortWeightUpdate', [{ upload }]).catch(() => undefined);
      throw e;
    }
  });

  app.post<{ Body: { path: string; component?: string; bucket?: boolean } }>('/update_weights_from_path', {
    bodyLimit: ctx.options.bodyLimits.json,
    schema: {
      body: {
        type: 'object', required: ['path'], additionalProperties: false,
        properties: { path: { type: 'string' }, component: { type: 'string' }, bucket: { type: 'boolean' } },
      },
    },
  }, async (request) => {
    ctx.need('loadWeights');
    const path = await ctx.weightsPath(request.body.path, 'path');
    const result = await ctx.call<{ bytes: number }>('loadWeights', [{ component: request.body.component, source: path, bucket: request.body.bucket ?? false }]);
    ctx.metrics.weightBytes.inc(result.bytes);
    return result;
  });

  app.post('/finish_weight_update', async () => ctx.call('finishWeightUpdate'));
  app.post('/abort_weight_update', async () => ctx.call('abortWeightUpdate'));
}
