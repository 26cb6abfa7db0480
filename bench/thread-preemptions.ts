// How often the inference thread was preempted (Linux: nonvoluntary context switches in /proc).
// A caller that shares a core with ONNX Runtime's intra-op pool thread (pinned to the cores after
// the first at ORT's default thread count) loses it at every parallel section: hundreds of
// preemptions per call instead of tens, and ~25% slower steps on 2 cores (BENCHMARKS.md, "Batch-1
// regression, investigated"). This tells such a run from a regression.
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const TASKS = '/proc/self/task';

function field(tid: string, name: string): string | undefined {
  try {
    return new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(readFileSync(`${TASKS}/${tid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined; // the thread ended
  }
}

function cpuNs(tid: string): number {
  try {
    return Number(readFileSync(`${TASKS}/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/** Threads of this process now (empty where /proc is absent). */
export function threadIds(): Set<string> {
  return existsSync(TASKS) ? new Set(readdirSync(TASKS)) : new Set();
}

/**
 * The inference thread among the threads started since `before` (after a warm-up call): the
 * busiest one on the cores this process may use (ONNX Runtime's pinned threads have fewer).
 */
export function findInferenceThread(before: Set<string>): string | undefined {
  const mine = field(String(process.pid), 'Cpus_allowed_list');
  const fresh = [...threadIds()].filter((t) => !before.has(t) && field(t, 'Cpus_allowed_list') === mine);
  return fresh.sort((a, b) => cpuNs(b) - cpuNs(a))[0];
}

/** Nonvoluntary context switches of a thread so far (undefined without /proc). */
export function preemptions(tid: string | undefined): number | undefined {
  const v = tid && field(tid, 'nonvoluntary_ctxt_switches');
  return v ? Number(v) : undefined;
}
