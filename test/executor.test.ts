import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createWorker } from '../index.ts';
import { definePlugin } from '../core/plugin.ts';
import { ThreadExecutor } from '../core/executor/executor.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { BUILTIN_PLUGINS } from '../plugins/builtin.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CALLER = 'test/fixtures/faults/caller.ts';
const FAULTS = fileURLToPath(new URL('./fixtures/faults', import.meta.url));

/** Runs the caller script in a child process; resolves with its exit code and output. */
function caller(...args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', ['bin/run-ts.js', CALLER, ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

describe('the caller\'s process', () => {
  it('exits by itself when a worker is idle and never closed, but not before a pending call is answered', async () => {
    // Exiting early would leave the top-level await unsettled (exit code 13, no "rollout done").
    expect(await caller('idle')).toMatchObject({ code: 0, stdout: 'rollout done\n' });
  });

  it('process.exit() during a generate exits with the caller\'s code, never an abort (134) in ONNX Runtime\'s teardown', async () => {
    // Before the native-call gate, 6 runs out of 10 of these aborted with "terminate called after
    // throwing an instance of 'Napi::Error'": the thread was stopped while a run was returning.
    const runs = await Promise.all(['1', '2', '3', '5'].map((step) => caller('exit', step)));
    for (const r of runs) {
      expect(r.stderr).not.toMatch(/terminate called|Napi::Error/);
      expect([r.code, r.signal]).toEqual([7, null]);
    }
  });

  it('a throwing worker.events listener is the caller\'s uncaught exception (exit 1, its message), never an abort', async () => {
    const runs = await Promise.all(['2', '4'].map((step) => caller('listener', step)));
    for (const r of runs) {
      expect(r.stderr).not.toMatch(/terminate called|Napi::Error/);
      expect(r.stderr).toMatch(/Error: the listener threw/);
      expect([r.code, r.signal]).toEqual([1, null]);
    }
  });
});

describe('the inference thread\'s files', () => {
  it('a missing thread module (omni-worker bundled inline) is named, with the fix, before any thread starts', async () => {
    const registry = { module: '/nonexistent/bundle/plugins/builtin.js', export: 'BUILTIN_PLUGINS', registry: BUILTIN_PLUGINS };
    await expect(ThreadExecutor.start(resolveConfig({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY }), registry)).rejects
      .toThrow(/^the inference thread cannot start: \/nonexistent\/bundle\/plugins\/builtin\.js is missing\. .*keep it external.*executor: 'inline'$/);
  });
});

describe('close', () => {
  const config = { loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1 } as const;

  it('during a generate: the generate rejects as closed (not "aborted by sleep"), and so does every later call', async () => {
    const w = await createWorker(config);
    const rollout = w.generate([{ prompt: 'a red circle', steps: 500 }]);
    let closing: Promise<void> | undefined;
    w.events.on('step', () => { closing ??= w.close(); });
    await expect(rollout).rejects.toThrow(/the worker is closed/);
    await expect(rollout).rejects.not.toThrow(/sleep/);
    await closing;
    await expect(w.generate([{ prompt: 'x', steps: 1 }])).rejects.toThrow(/^the worker is closed$/);
    await expect(w.executeMethod('getState')).rejects.toThrow(/^the worker is closed$/);
    await w.close(); // again: resolves
  });

  it('two concurrent close() both resolve, as one close', async () => {
    const w = await createWorker(config);
    const states: string[] = [];
    w.events.on('state', (s) => states.push(s.state));
    await expect(Promise.all([w.close(), w.close({ timeoutMs: 1 })])).resolves.toEqual([undefined, undefined]);
    expect(states.filter((s) => s === 'closed')).toEqual(['closed']); // one close ran, to its end
  });

  it('stops the rollouts in flight before any close hook runs', async () => {
    const log: string[] = [];
    const recorder = definePlugin({
      name: 'recorder',
      apply({ hooks }) {
        hooks.afterStep.tap('recorder', () => { log.push('step'); });
        // An async close hook: while it waits, a rollout still in flight would keep stepping.
        hooks.close.tapPromise('recorder', async () => {
          log.push('close hook');
          await new Promise((r) => setTimeout(r, 50));
        });
      },
    });
    const w = await inlineWorker({ threads: 1 }, { recorder });
    const rollout = w.executeMethod('generate', [{ prompt: 'a red circle', steps: 500 }]).catch((e: Error) => e.message);
    await new Promise<void>((resolve) => w.events.on('step', (s) => { if (s.step === 3) resolve(); }));
    await w.close();
    expect(await rollout).toMatch(/the worker is closed/);
    expect(log.indexOf('close hook')).toBeGreaterThan(0);
    expect(log.slice(log.indexOf('close hook'))).toEqual(['close hook']);
  });

  it('inline: close({ timeoutMs }) returns past the timeout with a warning when a close hook never settles', async () => {
    const w = await createWorker({ ...config, executor: 'inline', baseDir: FAULTS, plugins: ['dummy-loader', { module: 'fault-plugin.ts', options: { close: 'hang' } }] });
    const warnings: string[] = [];
    w.events.on('log', (l) => warnings.push(l.message));
    await w.close({ timeoutMs: 200 });
    expect(warnings).toEqual(['close: the worker did not finish closing within 200 ms (a rollout or close hook is still running on this thread)']);
    await expect(w.generate([{ prompt: 'x', steps: 1 }])).rejects.toThrow(/^the worker is closed$/);
  });
});
