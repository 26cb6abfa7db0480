// POST /v1/images/generations: OpenAI's images API shape for plain use (base64 PNGs), served by
// the same coalesced rollouts as /v1/rollouts.
import type { FastifyInstance } from 'fastify';
import { imagePng } from '../../core/image/png.ts';
import type { GenerateRequest } from '../../core/public.ts';
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';
import { disconnectSignal, rollout } from './rollouts.ts';

interface ImagesBody {
  prompt: string;
  n?: number;
  size?: string;
  response_format?: 'b64_json';
  negative_prompt?: string;
  seed?: number;
  steps?: number;
  guidance_scale?: number;
  model?: string;
}

const imagesSchema = {
  type: 'object',
  required: ['prompt'],
  additionalProperties: false,
  properties: {
    prompt: { type: 'string' },
    n: { type: 'integer', minimum: 1 },
    size: { type: 'string', pattern: '^[0-9]+x[0-9]+$' },
    response_format: { type: 'string', enum: ['b64_json'] },
    negative_prompt: { type: 'string' },
    seed: { type: 'integer', minimum: 0 },
    steps: { type: 'integer', minimum: 1 },
    guidance_scale: { type: 'number' },
    // Accepted for OpenAI clients that always send it; one worker serves one model.
    model: { type: 'string' },
  },
} as const;

function toRequest(body: ImagesBody): GenerateRequest {
  const r: GenerateRequest = { prompt: body.prompt, numOutputsPerPrompt: body.n ?? 1 };
  if (body.size) {
    const [width, height] = body.size.split('x').map(Number);
    if (!width || !height) throw new HttpError(400, 'size', `size ${JSON.stringify(body.size)} must be WIDTHxHEIGHT with both above 0`);
    Object.assign(r, { width, height });
  }
  if (body.negative_prompt !== undefined) r.negativePrompt = body.negative_prompt;
  if (body.seed !== undefined) r.seed = body.seed;
  if (body.steps !== undefined) r.steps = body.steps;
  if (body.guidance_scale !== undefined) r.guidanceScale = body.guidance_scale;
  return r;
}

export function imageRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: ImagesBody }>('/v1/images/generations', { bodyLimit: ctx.options.bodyLimits.json, schema: { body: imagesSchema } }, async (request, reply) => {
    const batch = await rollout(ctx, [toRequest(request.body)], disconnectSignal(request, reply));
    const images = batch.batch.responses;
    if (!images) throw new HttpError(422, undefined, "this worker's pipeline returns no images (no 'responses' tensor): use POST /v1/rollouts");
    const seeds = batch.nonTensorBatch.seed ?? [];
    return {
      created: Math.floor(Date.now() / 1000),
      data: Array.from({ length: batch.length }, (_, b) => ({ b64_json: Buffer.from(imagePng(images, b)).toString('base64'), seed: seeds[b] })),
    };
  });
}
