// `omni-worker serve` as a child process on a free loopback port, for tests that need a real
// socket (the Python client, SIGTERM): a dummy-model config in a temp folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export async function startServe(dir: string, extraArgs: string[] = [], loadOptions = '{ height: 16, width: 16, channels: 4, downscale: 2, hidden: 32, layers: 1 }'): Promise<ServeProcess> {
  const config = join(dir, 'worker.yaml');
  await writeFile(config, `loadFormat: dummy\nloadOptions: ${loadOptions}\nthreads: 1\n`);
  const child = spawn(process.execPath, [join(REPO, 'bin/omni-worker.js'), 'serve', '--port', '0', '--config', config, ...extraArgs], {
    cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      const m = /serving on (http:\/\/[\d.:]+)/.exec(out);
      if (m) { clearTimeout(timer); child.stdout!.off('data', check); resolve(m[1]); }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`serve exited (${code}) before listening:\n${out}`)); });
  });
  return {
    url, child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
