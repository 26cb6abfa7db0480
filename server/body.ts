// Request bodies read as streams: the route decides, from Content-Length, whether it takes a
// body that large before a byte of it is read.
import type { FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { HttpError } from './http-error.ts';

/** The announced body length, within `limit`; 411 without one, 413 over it. */
export function bodyLength(request: FastifyRequest, limit: number): number {
  const raw = request.headers['content-length'];
  if (raw === undefined) throw new HttpError(411, 'content-length', 'a safetensors body needs a Content-Length header (chunked bodies are not taken)');
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(400, 'content-length', `Content-Length ${JSON.stringify(raw)} is not a byte count`);
  if (n > limit) throw new HttpError(413, 'body', `the body is ${n} bytes, over this route's limit of ${limit} bytes`);
  return n;
}

/** The whole body in one owned buffer (adapters, RPC tensors: bounded by the route's limit). */
export async function readBody(request: FastifyRequest, limit: number): Promise<Uint8Array> {
  const length = bodyLength(request, limit);
  const out = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length); // filled below, or refused
  let at = 0;
  for await (const chunk of request.body as Readable) {
    const c = chunk as Uint8Array;
    if (at + c.length > length) throw new HttpError(400, 'body', `the body runs past its Content-Length of ${length} bytes`);
    out.set(c, at);
    at += c.length;
  }
  if (at !== length) throw new HttpError(400, 'body', `the body ended after ${at} of ${length} bytes`);
  return out;
}

export const isOctetStream = (request: FastifyRequest) => (request.headers['content-type'] ?? '').startsWith('application/octet-stream');
