// Memory as measured, not as accounted: process memory after a forced full GC, and device memory
// through nvidia-smi (opt-in: it forks a process and takes tens of milliseconds).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';

export interface HostMemory {
  rss: number;
  /** Memory of ArrayBuffers and other objects V8 tracks outside its heap (weights live here). */
  external: number;
  arrayBuffers: number;
}

let gcFn: (() => void) | undefined;

/** A full GC, in any thread, without --expose-gc on the command line. */
export function forceGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** Process memory after two full GCs a macrotask apart (backing stores are freed off-thread). */
export async function measureHost(): Promise<HostMemory> {
  forceGc();
  await new Promise((r) => setImmediate(r));
  forceGc();
  const m = process.memoryUsage();
  return { rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers };
}

const run = promisify(execFile);

/** GPU memory in use (bytes): this process's when nvidia-smi lists it, else the whole device's. */
export async function measureDevice(gpu = 0): Promise<number | undefined> {
  try {
    const apps = await run('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits', `--id=${gpu}`]);
    const mine = apps.stdout.split('\n').map((l) => l.split(',').map((s) => s.trim())).find(([pid]) => Number(pid) === process.pid);
    if (mine) return Number(mine[1]) * 2 ** 20;
    const total = await run('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits', `--id=${gpu}`]);
    return Number(total.stdout.trim()) * 2 ** 20;
  } catch {
    return undefined; // no nvidia-smi: not a CUDA machine
  }
}
