// vLLM's sleep routes over the sleep-mode plugin: POST /sleep?level=1|2[&mode=wait|abort],
// POST /wake_up?tags=weights&tags=sessions (or tags=weights,sessions; none: all), GET /is_sleeping.
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

const tagsOf = (raw: string | string[] | undefined): string[] | undefined => {
  if (raw === undefined) return undefined;
  const tags = (Array.isArray(raw) ? raw : [raw]).flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  return tags.length ? tags : undefined;
};

export function sleepRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Querystring: { level: '1' | '2'; mode: 'wait' | 'abort' } }>('/sleep', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { level: { type: 'string', enum: ['1', '2'], default: '1' }, mode: { type: 'string', enum: ['wait', 'abort'], default: 'wait' } },
      },
    },
  }, async (request) => ctx.call('sleep', [{ level: Number(request.query.level), mode: request.query.mode }]));

  app.post<{ Querystring: { tags?: string | string[]; checkpoint?: 'true' | 'false' } }>('/wake_up', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          tags: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
          checkpoint: { type: 'string', enum: ['true', 'false'] },
        },
      },
    },
  }, async (request) => {
    const tags = tagsOf(request.query.tags);
    const args: Record<string, unknown> = {};
    if (tags) args.tags = tags;
    if (request.query.checkpoint) args.checkpoint = request.query.checkpoint === 'true';
    return ctx.call('wakeUp', [args]);
  });

  app.get('/is_sleeping', async () => {
    const state = await ctx.call<{ asleep: boolean }>('sleepState');
    return { is_sleeping: state.asleep, ...state };
  });
}
