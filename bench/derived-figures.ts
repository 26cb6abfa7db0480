// Figures derived from raw timings and memory readings (the GPU benchmarks' arithmetic, tested
// in test/derived-figures.test.ts).
import { median } from './support.ts';

/** '' is the base model (no adapter). */
export interface TimedRequest {
  from: string;
  to: string;
  seconds: number;
}

/**
 * The request order of a switch benchmark: each name twice in a row, the names cycled `reps`
 * times, so that every name is requested as often right after another name (a switch) as right
 * after itself (no switch), and a drift of the machine hits both alike.
 */
export function switchOrder(names: readonly string[], reps: number): string[] {
  if (names.length < 2) throw new Error(`switchOrder: needs at least two names to switch between, got ${JSON.stringify(names)}`);
  const order: string[] = [];
  for (let r = 0; r < reps; r++) for (const n of names) order.push(n, n);
  return order;
}

/** The requests of `order` labelled with the one before (the first has none and is dropped). */
export function labelTransitions(order: readonly string[], seconds: readonly number[]): TimedRequest[] {
  if (order.length !== seconds.length) throw new Error(`labelTransitions: ${order.length} requests but ${seconds.length} timings`);
  return order.slice(1).map((to, i) => ({ from: order[i], to, seconds: seconds[i + 1] }));
}

export interface SwitchCost {
  /** Median seconds of a request right after a request with another adapter (or the base). */
  afterOther: number;
  /** Median seconds of the same request right after one with the same adapter. */
  afterSame: number;
  /** afterOther - afterSame, in ms. */
  overheadMs: number;
  samples: number;
}

/** The switch's cost into each target and over all targets; a target with no pair of samples is left out. */
export function switchCosts(requests: readonly TimedRequest[]): Record<string, SwitchCost> {
  const cost = (rs: readonly TimedRequest[]): SwitchCost | undefined => {
    const other = rs.filter((r) => r.from !== r.to).map((r) => r.seconds);
    const same = rs.filter((r) => r.from === r.to).map((r) => r.seconds);
    if (!other.length || !same.length) return undefined;
    const [afterOther, afterSame] = [median(other), median(same)];
    return { afterOther, afterSame, overheadMs: (afterOther - afterSame) * 1000, samples: other.length + same.length };
  };
  const out: Record<string, SwitchCost> = {};
  for (const to of new Set(requests.map((r) => r.to))) {
    const c = cost(requests.filter((r) => r.to === to));
    if (c) out[to === '' ? 'base' : to] = c;
  }
  const all = cost(requests);
  if (all) out.all = all;
  return out;
}

export interface SleepMemory {
  /** The process's device memory awake: awake - before (MiB). */
  footprintMiB: number;
  /** What sleep leaves: asleep - before (MiB): the CUDA context and the provider's state. */
  residueMiB: number;
  /** Share of the footprint that sleep gave back. */
  freedFraction: number;
  /** The footprint from which the same residue is at most 1 - goal of it (the goal met). */
  goalFootprintMiB: number;
}

/**
 * Device memory read (nvidia-smi, whole GPU) before the process touched the device, awake and
 * asleep; undefined when a reading is missing (no nvidia-smi).
 */
export function sleepMemory(beforeMiB: number | undefined, awakeMiB: number | undefined, asleepMiB: number | undefined, goal = 0.95): SleepMemory | undefined {
  if (beforeMiB === undefined || awakeMiB === undefined || asleepMiB === undefined) return undefined;
  const footprintMiB = awakeMiB - beforeMiB;
  const residueMiB = asleepMiB - beforeMiB;
  if (footprintMiB <= 0) throw new Error(`sleepMemory: awake reading ${awakeMiB} MiB is not above the reading before the worker (${beforeMiB} MiB)`);
  return { footprintMiB, residueMiB, freedFraction: (awakeMiB - asleepMiB) / footprintMiB, goalFootprintMiB: Math.ceil(residueMiB / (1 - goal)) };
}
