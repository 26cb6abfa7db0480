// omni-worker fleet-worker: one worker of a NATS fleet (docs/fleet.md). Runs until SIGTERM or
// SIGINT (finishes the part in hand, leaves the registry); exits 1 when its inference worker is
// gone, so that a supervisor (systemd, Kubernetes) starts a fresh one.
import { FleetWorker } from '../fleet/fleet-worker.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { fleetOptionsFromJson } from '../fleet/gateway.ts';

export interface FleetWorkerCliOptions {
  nats: string;
  config?: string;
  threads?: number;
  id?: string;
  fleetOptions?: string;
}

export async function fleetWorkerCommand(opts: FleetWorkerCliOptions, log: (line: string) => void): Promise<FleetWorker> {
  const config = resolveConfig(opts.config);
  const fleet = fleetOptionsFromJson(opts.fleetOptions);
  const worker = await FleetWorker.start({
    nats: opts.nats,
    config: opts.threads === undefined ? config : { ...config, threads: opts.threads },
    fleet,
    id: opts.id,
    onFatal: (e) => {
      log(e.message);
      process.exit(1);
    },
  });
  const stop = () => void worker.close().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  log(`fleet worker ${worker.id} serving ${opts.nats} (weights version ${worker.weightsVersion})`);
  return worker;
}
