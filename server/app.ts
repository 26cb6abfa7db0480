// The HTTP server around one worker (fastify): routes in routes/, rollout calls merged by the
// coalescer, a bearer token off loopback, one error shape. `buildServer` returns the app
// unstarted (tests use inject()); `listen` and `close` are the CLI's lifecycle.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import bearerAuth from '@fastify/bearer-auth';
import type { OmniWorker } from '../index.ts';
import { PathAllowlist } from '../core/public.ts';
import { RolloutCoalescer } from './coalescer.ts';
import { ServerContext } from './context.ts';
import { errorHandler, HttpError } from './http-error.ts';
import { ServerMetrics } from './metrics.ts';
import { isLoopback, parseServeOptions, type ServeOptions, type ServeOptionsInput } from './options.ts';
import { imageRoutes } from './routes/images.ts';
import { loraRoutes } from './routes/lora.ts';
import { rolloutRoutes } from './routes/rollouts.ts';
import { rpcRoutes } from './routes/rpc.ts';
import { sleepRoutes } from './routes/sleep.ts';
import { statusRoutes } from './routes/status.ts';
import { weightRoutes } from './routes/weights.ts';

export interface OmniServer {
  readonly app: FastifyInstance;
  readonly options: ServeOptions;
  readonly coalescer: RolloutCoalescer;
  readonly metrics: ServerMetrics;
  /** Starts listening; the address it listens on. */
  listen(): Promise<string>;
  /**
   * Graceful stop: /health turns 503, queued rollouts are refused (503), the generate call in
   * flight and every open request finish, then the listener closes. The worker stays open
   * (its owner closes it). Work still running after `graceSeconds`, and answers still being
   * written 5 s after the work is done, have their connections cut.
   */
  close(graceSeconds?: number): Promise<void>;
}

/** Seconds answers still being written get at shutdown once the work in flight is done. */
const FLUSH_SECONDS = 5;

/** Waits for `work`, at most `seconds`. */
async function within(work: Promise<unknown>, seconds: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((done) => { timer = setTimeout(done, seconds * 1000); })]);
  clearTimeout(timer);
}

/** Paths unauthenticated callers may reach (load balancers probe it). */
const OPEN_PATHS = new Set(['/health']);

export async function buildServer(worker: OmniWorker, input: ServeOptionsInput = {}, log = false): Promise<OmniServer> {
  const options = parseServeOptions(input);
  if (!isLoopback(options.host) && !options.token) {
    throw new Error(`omni-worker serve: binding ${options.host} (not loopback) needs --token: every caller that reaches the port could drive the worker`);
  }
  const methods = new Set(await worker.executeMethod('listMethods') as string[]);
  const state = await worker.executeMethod('getState') as { weightsVersion: number };
  const metrics = new ServerMetrics();
  metrics.noteVersion(state.weightsVersion);
  const stopListening = metrics.listen(worker.events);
  const coalescer = new RolloutCoalescer(
    (requests) => worker.generate(requests),
    {
      maxBatchSize: Math.min(options.maxBatchSize ?? worker.config.maxBatchSize, worker.config.limits.maxSamplesPerCall),
      windowMs: options.coalesceMs,
      maxQueuedSamples: options.maxQueuedSamples,
    },
    {
      onDispatch: ({ callers, ok }) => {
        if (!ok) return;
        metrics.generateCalls.inc();
        metrics.mergedCallers.observe(callers);
      },
    },
  );
  const roots = options.weightRoots.map((r) => resolve(r)).filter((r) => existsSync(r));
  const ctx = new ServerContext(worker, options, coalescer, metrics, methods, new PathAllowlist(roots));

  const app = Fastify({
    logger: log ? { level: 'info' } : false,
    bodyLimit: options.bodyLimits.json,
    // Plugin keys pass through; no value is coerced into another type.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    forceCloseConnections: 'idle',
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: { message: `no route ${request.method} ${request.url.split('?')[0]}`, field: 'url' } }));
  // Safetensors bodies reach the routes as streams; each route bounds and reads its own.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  if (options.token) {
    await app.register(bearerAuth, {
      keys: new Set([options.token]),
      addHook: false,
      verifyErrorLogLevel: '', // refusals reach errorHandler (one error shape)
    });
    app.addHook('onRequest', (request, reply, done) => {
      if (OPEN_PATHS.has(request.url.split('?')[0])) return done();
      app.verifyBearerAuth!(request, reply, done);
    });
  }

  let closing = false;
  rolloutRoutes(app, ctx);
  imageRoutes(app, ctx);
  sleepRoutes(app, ctx);
  weightRoutes(app, ctx);
  loraRoutes(app, ctx);
  rpcRoutes(app, ctx);
  statusRoutes(app, ctx, () => closing);

  return {
    app, options, coalescer, metrics,
    listen: () => app.listen({ host: options.host, port: options.port }),
    async close(graceSeconds = options.shutdownGraceSeconds) {
      if (closing) return;
      closing = true;
      // The grace bounds the work in flight; once it is done, answers still being written get
      // FLUSH_SECONDS, so a client that never reads its answer cannot hold the shutdown.
      await within(coalescer.close('the server is shutting down'), graceSeconds);
      await within(app.close(), FLUSH_SECONDS);
      // Past the grace: cut what is still open.
      app.server.closeAllConnections?.();
      stopListening();
      await ctx.assembler.close();
    },
  };
}

export { HttpError };
