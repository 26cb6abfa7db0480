// One error shape for every route: { error: { message, field?, request? } } with a 4xx or 5xx
// status. `field` names what was wrong ("level", "body", "[2].prompt"); `request` the index of the
// caller's request a worker error names.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(readonly status: number, readonly field: string | undefined, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface ErrorBody {
  error: { message: string; field?: string; request?: number };
}

/**
 * A worker's refusal as an HTTP error. The worker checks a call whole before any work, so its
 * errors are the caller's: 422 with the request index and field its message names; 503 while
 * it is asleep (the trainer wakes it); 500 once it has been closed.
 */
export function workerError(e: unknown): HttpError {
  const message = e instanceof Error ? e.message : String(e);
  if (/the worker is asleep|is asleep:/.test(message)) return new HttpError(503, undefined, message);
  if (/the inference thread exited|worker is closed/.test(message)) return new HttpError(500, undefined, message);
  const m = /^request (\d+): (?:invalid (\S+) option: )?([A-Za-z_][\w.[\]]*)?/.exec(message);
  const err = new HttpError(422, m?.[3] ?? m?.[2], message);
  if (m) (err as { request?: number }).request = Number(m[1]);
  return err;
}

export function sendError(reply: FastifyReply, err: HttpError): FastifyReply {
  const body: ErrorBody = { error: { message: err.message } };
  if (err.field !== undefined) body.error.field = err.field;
  const request = (err as { request?: number }).request;
  if (request !== undefined) body.error.request = request;
  return reply.code(err.status).headers(err.headers).type('application/json').send(body);
}

/** Fastify's own errors (schema, body size, content type) in the same shape. */
export function errorHandler(error: FastifyError | HttpError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof HttpError) return sendError(reply, error);
  const status = (error as FastifyError).statusCode ?? 500;
  if (status >= 500) return sendError(reply, new HttpError(status, undefined, error.message));
  if (error.code?.startsWith('FST_BEARER_AUTH')) {
    return sendError(reply, new HttpError(401, 'authorization', `${error.message}: send Authorization: Bearer <token>`));
  }
  // Schema errors: "body/0/prompt must be string" -> field "[0].prompt".
  const validation = (error as FastifyError).validation?.[0];
  const field = validation
    ? `${(error as FastifyError).validationContext ?? ''}${validation.instancePath}`.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')
    : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'body' : undefined;
  return sendError(reply, new HttpError(status, field, error.message));
}
