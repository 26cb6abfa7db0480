// python3 as a child process for the tests that drive Python suites: its exit code and everything
// it printed (stdout and stderr together), never echoed to the test's own output.
import { spawn } from 'node:child_process';

export interface PythonRun { code: number | null; output: string }

export function runPython(args: string[], cwd: string, env: Record<string, string>): Promise<PythonRun> {
  return new Promise((resolve) => {
    const child = spawn('python3', args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.once('exit', (code) => resolve({ code, output }));
  });
}
