// The fleet commands refuse bad options and an unreachable server with errors that name them,
// before any model is loaded, and exit 1.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './support/nats.ts';

const BIN = fileURLToPath(new URL('../bin/omni-worker.js', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (e, stdout, stderr) => resolve({ code: e ? (e as { code?: number }).code ?? 1 : 0, output: stdout + stderr }));
  });
}

describe('fleet commands: bad input', () => {
  it('fleet-worker: an unknown fleet option is named; an unreachable server is named with its URL', async () => {
    const port = await freePort(); // nothing listens there
    const [badOption, noServer] = await Promise.all([
      run(['fleet-worker', '--nats', `nats://127.0.0.1:${port}`, '--fleet-options', '{"ackWait":1}']),
      run(['fleet-worker', '--nats', `nats://127.0.0.1:${port}`]),
    ]);
    expect(badOption).toEqual({ code: 1, output: 'omni-worker: omni-worker fleet: invalid fleet options: (root): Unrecognized key: "ackWait"\n' });
    expect(noServer.code).toBe(1);
    expect(noServer.output).toMatch(new RegExp(`^omni-worker: fleet: cannot connect to NATS at nats://127\\.0\\.0\\.1:${port}: .* \\(is nats-server -js running there\\?\\)\\n$`));
  }, 40_000);

  it('serve --fleet without --nats says what it needs; --fleet-options must be JSON', async () => {
    const [noUrl, notJson] = await Promise.all([
      run(['serve', '--fleet', '--port', '0']),
      run(['fleet-worker', '--nats', 'nats://127.0.0.1:1', '--fleet-options', '{ackWaitMs']),
    ]);
    expect(noUrl).toEqual({ code: 1, output: 'omni-worker: serve --fleet needs --nats URL (the NATS server the fleet workers use)\n' });
    expect(notJson.code).toBe(1);
    expect(notJson.output).toMatch(/^omni-worker: --fleet-options must be JSON \(/);
  }, 40_000);
});
