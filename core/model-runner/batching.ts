// Expands requests into samples and groups compatible samples into batches.
// Compatible = same sampling parameters and same plugin options (sde, lora, ...).
import type { GenerateRequest } from '../protocol.ts';
import type { SampleSpec, SamplingParams } from '../pipeline/types.ts';

import { CORE_REQUEST_KEYS } from '../request-options.ts';

const CORE_KEYS = new Set(CORE_REQUEST_KEYS);

export interface PlannedBatch {
  params: SamplingParams;
  samples: SampleSpec[];
  /** Position of each sample in the call's output (request order). */
  outputRows: number[];
}

function fail(i: number, field: string, problem: string): never {
  throw new Error(`request ${i}: ${field} ${problem}`);
}

function positiveInt(i: number, field: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(i, field, `must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function expandRequests(requests: readonly GenerateRequest[], defaults: SamplingParams, randomSeed: () => number): { samples: SampleSpec[]; params: SamplingParams[] } {
  if (!Array.isArray(requests) || requests.length === 0) throw new Error('generate needs a non-empty array of requests');
  const samples: SampleSpec[] = [];
  const params: SamplingParams[] = [];
  requests.forEach((r, i) => {
    if (r === null || typeof r !== 'object') fail(i, 'request', 'must be an object');
    if (typeof r.prompt !== 'string') fail(i, 'prompt', 'must be a string');
    if (r.negativePrompt !== undefined && typeof r.negativePrompt !== 'string') fail(i, 'negativePrompt', 'must be a string');
    const n = positiveInt(i, 'numOutputsPerPrompt', r.numOutputsPerPrompt) ?? (r.seeds ? r.seeds.length : 1);
    if (r.seeds !== undefined) {
      if (!Array.isArray(r.seeds) || r.seeds.length !== n) fail(i, 'seeds', `must be an array of ${n} seeds`);
      (r.seeds as unknown[]).forEach((s) => { if (!Number.isSafeInteger(s) || (s as number) < 0) fail(i, 'seeds', `must hold non-negative integers, got ${JSON.stringify(s)}`); });
    }
    if (r.seed !== undefined && (!Number.isSafeInteger(r.seed) || r.seed < 0)) fail(i, 'seed', `must be a non-negative integer, got ${JSON.stringify(r.seed)}`);
    if (r.guidanceScale !== undefined && (typeof r.guidanceScale !== 'number' || !(r.guidanceScale >= 0))) fail(i, 'guidanceScale', `must be a number >= 0, got ${JSON.stringify(r.guidanceScale)}`);
    const p: SamplingParams = {
      height: positiveInt(i, 'height', r.height) ?? defaults.height,
      width: positiveInt(i, 'width', r.width) ?? defaults.width,
      steps: positiveInt(i, 'steps', r.steps) ?? defaults.steps,
      guidanceScale: r.guidanceScale ?? defaults.guidanceScale,
    };
    // No seed: a fresh random one, returned in non_tensor_batch.seed so the sample can be replayed.
    const base = r.seed ?? randomSeed();
    for (let k = 0; k < n; k++) {
      samples.push({ requestIndex: i, outputIndex: k, prompt: r.prompt, negativePrompt: r.negativePrompt ?? '', seed: r.seeds ? r.seeds[k] : base + k, request: r });
      params.push(p);
    }
  });
  return { samples, params };
}

/** Plugin options of a request, as a stable key. */
function pluginKey(r: GenerateRequest): string {
  const entries = Object.keys(r).filter((k) => !CORE_KEYS.has(k)).sort().map((k) => [k, r[k]]);
  return JSON.stringify(entries);
}

/** Refuses request keys that neither core nor a loaded plugin reads: a silently ignored option is a wrong rollout. */
function checkKeys(requests: readonly GenerateRequest[], claimed: ReadonlySet<string>): void {
  requests.forEach((r, i) => {
    if (r === null || typeof r !== 'object') return;
    for (const k of Object.keys(r)) {
      if (!CORE_KEYS.has(k) && !claimed.has(k)) {
        const known = [...new Set([...CORE_KEYS, ...claimed])].join(', ');
        throw new Error(`request ${i}: option '${k}' is not read by core or any loaded plugin (known: ${known})`);
      }
    }
  });
}

export function planBatches(
  requests: readonly GenerateRequest[],
  defaults: SamplingParams,
  maxBatchSize: number,
  claimed: ReadonlySet<string>,
  randomSeed: () => number,
): PlannedBatch[] {
  const { samples, params } = expandRequests(requests, defaults, randomSeed);
  checkKeys(requests, claimed);
  const groups = new Map<string, PlannedBatch[]>();
  const batches: PlannedBatch[] = [];
  samples.forEach((s, row) => {
    const key = JSON.stringify(params[row]) + pluginKey(s.request);
    const list = groups.get(key) ?? [];
    groups.set(key, list);
    let last = list[list.length - 1];
    if (!last || last.samples.length >= maxBatchSize) {
      last = { params: params[row], samples: [], outputRows: [] };
      list.push(last);
      batches.push(last);
    }
    last.samples.push(s);
    last.outputRows.push(row);
  });
  return batches;
}
