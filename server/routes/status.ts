// GET /health (200 while serving, 503 once shutting down) and GET /metrics (Prometheus text).
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

export function statusRoutes(app: FastifyInstance, ctx: ServerContext, closing: () => boolean): void {
  app.get('/health', async (_request, reply) => {
    if (closing()) return reply.code(503).send({ status: 'shutting down' });
    return { status: 'ok', queue: ctx.coalescer.depth };
  });

  app.get('/metrics', async (_request, reply) => {
    const depth = ctx.coalescer.depth;
    ctx.metrics.queueCallers.set(depth.callers);
    ctx.metrics.queueSamples.set(depth.samples);
    return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
}
