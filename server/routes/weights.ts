// Weight updates: a safetensors body streamed tensor by tensor (POST /update_weights, ?bucket=true
// stages), a file on this host (POST /update_weights_from_path), and the phases that close an
// update (POST /finish_weight_update, /abort_weight_update). Nothing reaches the worker until the
// whole body is read and parsed, so a broken upload changes nothing.
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import type { HostTensor } from '../../core/public.ts';
import { bodyLength } from '../body.ts';
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';
import { readSafetensorsBody } from '../stream-safetensors.ts';

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
    const { tensors, bytes } = await readSafetensorsBody(request.body as Readable, length);
    ctx.metrics.weightBytes.inc(bytes);
    const source: Record<string, HostTensor> = Object.fromEntries(tensors);
    const args = { component: request.query.component, source, bucket: request.query.bucket === 'true' };
    // Each tensor has its own array: they move to the inference thread without a copy.
    return ctx.call('loadWeights', [args], tensors.map(([, t]) => t.data.buffer as ArrayBuffer));
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
