// `omni-worker serve`: one worker behind the HTTP routes of server/ until SIGTERM or SIGINT,
// which finish the work in flight, close the worker and exit 0.
import { createWorker } from '../index.ts';
import { loadConfigFile } from '../core/config/load-config.ts';
import { buildServer } from '../server/app.ts';
import type { ServeOptionsInput } from '../server/options.ts';
import { connectGateway, fleetRoutes } from '../fleet/gateway.ts';

export interface ServeCliOptions {
  config?: string;
  host: string;
  port: number;
  token?: string;
  coalesceMs?: number;
  maxQueuedSamples?: number;
  weightRoots?: string[];
  log?: boolean;
  /** A gateway to a NATS fleet (docs/fleet.md) instead of a local worker. */
  fleet?: boolean;
  nats?: string;
  fleetOptions?: string;
}

export async function serveCommand(opts: ServeCliOptions, print: (line: string) => void = console.log): Promise<void> {
  const input: ServeOptionsInput = {
    host: opts.host,
    port: opts.port,
    token: opts.token ?? process.env.OMNI_WORKER_TOKEN,
    ...(opts.coalesceMs !== undefined ? { coalesceMs: opts.coalesceMs } : {}),
    ...(opts.maxQueuedSamples !== undefined ? { maxQueuedSamples: opts.maxQueuedSamples } : {}),
    ...(opts.weightRoots?.length ? { weightRoots: opts.weightRoots } : {}),
  };
  const config = opts.config ? loadConfigFile(opts.config) : undefined;
  const gateway = opts.fleet ? await connectGateway(opts.nats, config, opts.fleetOptions, print) : undefined;
  // A fleet call is split across its workers: merged calls may hold up to the call limit.
  if (gateway) input.maxBatchSize ??= gateway.config.limits.maxSamplesPerCall;
  const worker = gateway ?? await createWorker(config);
  let server;
  try {
    server = await buildServer(worker, input, opts.log ?? false);
    if (gateway) fleetRoutes(server.app, gateway);
  } catch (e) {
    await worker.close();
    throw e;
  }
  const address = await server.listen();
  print(`omni-worker serving on ${address}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      print(`${signal}: finishing the work in flight`);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      void server.close().then(() => worker.close()).then(resolve, (e) => {
        print(`shutdown: ${(e as Error).message}`);
        resolve();
      });
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  print('stopped');
}
