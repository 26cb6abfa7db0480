// `omni-worker serve --fleet`: the server's routes over a FleetClient instead of a local worker,
// plus GET /fleet (workers, devices, weights versions).
import type { FastifyInstance } from 'fastify';
import type { WorkerConfig } from '../core/config/schema.ts';
import { FleetClient } from './fleet-client.ts';
import type { FleetOptionsInput } from './options.ts';

export function parseFleetOptions(json: string | undefined, flag = '--fleet-options'): FleetOptionsInput {
  if (!json) return {};
  try {
    return JSON.parse(json) as FleetOptionsInput;
  } catch (e) {
    throw new Error(`${flag} must be JSON (${(e as Error).message})`);
  }
}

export async function connectGateway(nats: string | undefined, config: WorkerConfig | undefined, fleetOptions: string | undefined): Promise<FleetClient> {
  if (!nats) throw new Error('serve --fleet needs --nats URL (the NATS server the fleet workers use)');
  return FleetClient.connect({ nats, config, fleet: parseFleetOptions(fleetOptions) });
}

export function fleetRoutes(app: FastifyInstance, client: FleetClient): void {
  app.get('/fleet', async () => client.status());
}
