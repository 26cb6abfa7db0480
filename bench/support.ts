// Shared bits of the benchmarks: machine description, timing, results files.
import { cpus, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function machine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
}

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Writes bench/results/NAME.json, or `file` when given (a run whose results go elsewhere). */
export function writeResults(name: string, results: unknown, file?: string): string {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  if (!file) mkdirSync(dir, { recursive: true });
  const path = file || `${dir}${name}.json`;
  writeFileSync(path, JSON.stringify({ date: new Date().toISOString(), machine: machine(), command: process.argv.slice(1).join(' '), results }, null, 2));
  return path;
}

/** GPU memory in use (MiB, nvidia-smi, first GPU) on cuda; undefined elsewhere or without nvidia-smi. */
export function deviceMemoryMiB(device: string): number | undefined {
  if (device !== 'cuda') return undefined;
  try {
    return Number(execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits']).toString().trim().split('\n')[0]);
  } catch {
    return undefined;
  }
}
