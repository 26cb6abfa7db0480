// Processes of the fleet tests: a nats-server with JetStream on a free loopback port, and fleet
// worker processes (the CLI), each waited for until it serves.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/omni-worker.js', import.meta.url));
/** The server binary: NATS_SERVER when set (scripts/device-fleet-bench.sh carries one), else PATH's. */
const NATS_SERVER = process.env.NATS_SERVER || 'nats-server';

export function natsServerInstalled(): boolean {
  return spawnSync(NATS_SERVER, ['--version']).status === 0;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function until(what: string, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const accepts = (port: number) => new Promise<boolean>((resolve) => {
  const c = connect(port, '127.0.0.1');
  c.once('connect', () => { c.destroy(); resolve(true); });
  c.once('error', () => resolve(false));
});

export async function startNats(port: number, storeDir: string): Promise<ChildProcess> {
  if (!natsServerInstalled()) throw new Error(`${NATS_SERVER} is not installed or does not run (apt-get install -y nats-server; .ci/run does it)`);
  const proc = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: 'ignore' });
  await until(`nats-server on port ${port}`, () => accepts(port), 10_000);
  return proc;
}

export async function stop(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await exited;
}

export interface WorkerProcess {
  proc: ChildProcess;
  output: string[];
}

/** `omni-worker fleet-worker`, resolved once it prints that it serves. */
export async function startFleetWorker(url: string, configFile: string, id: string, fleetOptions: object): Promise<WorkerProcess> {
  const proc = spawn(process.execPath, [BIN, 'fleet-worker', '--nats', url, '--config', configFile, '--id', id, '--fleet-options', JSON.stringify(fleetOptions)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  await until(`fleet worker ${id}`, async () => {
    if (proc.exitCode !== null) throw new Error(`fleet worker ${id} exited (${proc.exitCode}): ${output.join('')}`);
    return output.join('').includes('serving');
  }, 30_000);
  return { proc, output };
}
