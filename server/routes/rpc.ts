// POST /collective_rpc { method, args }: any method the worker lists (core's, plugins', extension
// classes'), one result per worker: { results: [...] }. Arguments or results holding tensors
// travel as one safetensors body (server/tensor-codec.ts): the request's metadata "rpc" holds
// { method, args }, the answer's metadata "results" holds the results.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { parseSafetensors, serializeSafetensors, type HostTensor } from '../../core/public.ts';
import { isOctetStream, readBody } from '../body.ts';
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';
import { attachTensors, detachTensors } from '../tensor-codec.ts';

/** Methods with a route of their own, where queueing or streaming matters. */
const ROUTED: Record<string, string> = { generate: 'POST /v1/rollouts' };

interface RpcCall { method: string; args: unknown[] }

function checkCall(raw: unknown): RpcCall {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new HttpError(400, 'body', 'collective_rpc takes { method, args? }');
  const { method, args = [], ...rest } = raw as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length) throw new HttpError(400, extra[0], `unknown field ${JSON.stringify(extra[0])} (known: method, args)`);
  if (typeof method !== 'string' || !method) throw new HttpError(400, 'method', 'method must be a method name (GET it with method listMethods)');
  if (!Array.isArray(args)) throw new HttpError(400, 'args', 'args must be a list of positional arguments');
  if (ROUTED[method]) throw new HttpError(400, 'method', `'${method}' is served by ${ROUTED[method]}, not by collective_rpc`);
  return { method, args };
}

function parseTensorCall(bytes: Uint8Array): { call: RpcCall; tensors: Map<string, HostTensor> } {
  let file;
  try {
    file = parseSafetensors(bytes);
  } catch (e) {
    throw new HttpError(400, 'body', `collective_rpc body: ${(e as Error).message}`);
  }
  const raw = file.metadata.rpc;
  if (raw === undefined) throw new HttpError(400, 'body', 'collective_rpc body: the safetensors metadata has no "rpc" ({ method, args } as a JSON string)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new HttpError(400, 'body', `collective_rpc body: metadata "rpc" is not JSON: ${(e as Error).message}`);
  }
  return { call: checkCall(parsed), tensors: new Map(file.names.map((n) => [n, file.get(n)])) };
}

function sendResults(reply: FastifyReply, results: unknown[]): FastifyReply | { results: unknown[] } {
  const { json, tensors } = detachTensors(results);
  if (!tensors.size) return { results: json as unknown[] };
  const bytes = serializeSafetensors(tensors, { results: JSON.stringify(json) });
  return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

export function rpcRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/collective_rpc', { bodyLimit: ctx.options.bodyLimits.json }, async (request, reply) => {
    let call: RpcCall;
    let transfer: ArrayBuffer[] = [];
    if (isOctetStream(request)) {
      const bytes = await readBody(request, ctx.options.bodyLimits.tensors);
      const parsed = parseTensorCall(bytes);
      call = { method: parsed.call.method, args: attachTensors(parsed.call.args, parsed.tensors) as unknown[] };
      transfer = [bytes.buffer as ArrayBuffer];
    } else {
      call = checkCall(request.body);
    }
    ctx.need(call.method);
    // A weights path read by the worker is held to the same roots as /update_weights_from_path.
    if (call.method === 'loadWeights') {
      const first = call.args[0] as { source?: unknown } | undefined;
      if (typeof first?.source === 'string') call.args[0] = { ...first, source: await ctx.weightsPath(first.source, 'args[0].source') };
    }
    // One worker for now: its result, as a list (vLLM's collective_rpc shape).
    return sendResults(reply, [await ctx.call(call.method, call.args, transfer)]);
  });
}
