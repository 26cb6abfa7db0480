// `omni-worker serve --fleet`: the server's routes over a FleetClient instead of a local worker,
// plus GET /fleet (workers, devices, weights versions).
import type { FastifyInstance } from 'fastify';
import type { WorkerConfig } from '../core/config/schema.ts';
import { FleetClient } from './fleet-client.ts';
import type { FleetOptionsInput } from './options.ts';

export function fleetOptionsFromJson(json: string | undefined, flag = '--fleet-options'): FleetOptionsInput {
  if (!json) return {};
  try {
    return JSON.parse(json) as FleetOptionsInput;
  } catch (e) {
    throw new Error(`${flag} must be JSON (${(e as Error).message})`);
  }
}

/** How long `serve --fleet` waits for the first worker (the routes need its method list). */
const FIRST_WORKER_WAIT_MS = 10 * 60_000;

export async function connectGateway(nats: string | undefined, config: WorkerConfig | undefined, fleetOptions: string | undefined, print: (line: string) => void): Promise<FleetClient> {
  if (!nats) throw new Error('serve --fleet needs --nats URL (the NATS server the fleet workers use)');
  const client = await FleetClient.connect({ nats, config, fleet: fleetOptionsFromJson(fleetOptions) });
  if (!(await client.liveWorkers()).length) {
    print(`waiting for a fleet worker on ${nats} (omni-worker fleet-worker --nats ${nats})`);
    try {
      await client.waitForWorker(FIRST_WORKER_WAIT_MS);
    } catch (e) {
      await client.close();
      throw e;
    }
  }
  return client;
}

export function fleetRoutes(app: FastifyInstance, client: FleetClient): void {
  app.get('/fleet', async () => client.status());
}
