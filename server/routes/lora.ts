// vLLM's adapter routes over the lora plugin. POST /v1/load_lora_adapter takes JSON
// { lora_name, lora_path } (a folder under the plugin's roots), or an adapter from memory: the
// adapter_model.safetensors bytes as application/octet-stream with ?lora_name=..., the
// adapter_config.json object in the file's metadata under "adapter_config".
import type { FastifyInstance } from 'fastify';
import { parseSafetensors } from '../../core/public.ts';
import { isOctetStream, readBody } from '../body.ts';
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';

interface LoadQuery { lora_name?: string; pinned?: 'true' | 'false'; replace?: 'true' | 'false' }
interface LoadJson { lora_name: string; lora_path: string; pinned?: boolean; replace?: boolean }

function adapterConfig(bytes: Uint8Array): unknown {
  let metadata: Record<string, string>;
  try {
    metadata = parseSafetensors(bytes).metadata;
  } catch (e) {
    throw new HttpError(400, 'body', `adapter body: ${(e as Error).message}`);
  }
  const raw = metadata.adapter_config;
  if (raw === undefined) throw new HttpError(400, 'body', 'adapter body: the safetensors metadata has no "adapter_config" (the adapter_config.json object as a JSON string)');
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new HttpError(400, 'body', `adapter body: metadata "adapter_config" is not JSON: ${(e as Error).message}`);
  }
}

export function loraRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Querystring: LoadQuery; Body: unknown }>('/v1/load_lora_adapter', {
    bodyLimit: ctx.options.bodyLimits.json,
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { lora_name: { type: 'string', minLength: 1 }, pinned: { type: 'string', enum: ['true', 'false'] }, replace: { type: 'string', enum: ['true', 'false'] } },
      },
    },
  }, async (request) => {
    ctx.need('addLora');
    if (isOctetStream(request)) {
      const name = request.query.lora_name;
      if (!name) throw new HttpError(400, 'lora_name', 'an adapter body needs ?lora_name=...');
      const bytes = await readBody(request, ctx.options.bodyLimits.tensors);
      const config = adapterConfig(bytes);
      const args = { name, config, tensors: bytes, pinned: request.query.pinned === 'true', replace: request.query.replace === 'true' };
      return ctx.call('addLora', [args], [bytes.buffer as ArrayBuffer]);
    }
    const body = request.body as Partial<LoadJson> | undefined;
    if (!body || typeof body !== 'object') throw new HttpError(400, 'body', 'POST /v1/load_lora_adapter takes JSON { lora_name, lora_path } or a safetensors body');
    for (const key of Object.keys(body)) {
      if (!['lora_name', 'lora_path', 'pinned', 'replace'].includes(key)) throw new HttpError(400, key, `unknown field ${JSON.stringify(key)} (known: lora_name, lora_path, pinned, replace)`);
    }
    if (typeof body.lora_name !== 'string' || !body.lora_name) throw new HttpError(400, 'lora_name', 'lora_name must be a non-empty string');
    if (typeof body.lora_path !== 'string' || !body.lora_path) throw new HttpError(400, 'lora_path', 'lora_path must be a folder under the lora plugin\'s roots');
    for (const key of ['pinned', 'replace'] as const) {
      if (body[key] !== undefined && typeof body[key] !== 'boolean') throw new HttpError(400, key, `${key} must be true or false`);
    }
    return ctx.call('addLora', [{ name: body.lora_name, path: body.lora_path, pinned: body.pinned ?? false, replace: body.replace ?? false }]);
  });

  app.post<{ Body: { lora_name: string } }>('/v1/unload_lora_adapter', {
    bodyLimit: ctx.options.bodyLimits.json,
    schema: { body: { type: 'object', required: ['lora_name'], additionalProperties: false, properties: { lora_name: { type: 'string', minLength: 1 } } } },
  }, async (request) => ({ adapters: await ctx.call('removeLora', [request.body.lora_name]) }));

  app.get('/v1/lora_adapters', async () => ctx.call('listLoras'));
}
