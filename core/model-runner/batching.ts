// Expands requests into samples and groups compatible samples into batches.
// Compatible = same sampling parameters and same plugin options (sde, lora, ...).
import type { GenerateRequest } from '../protocol.ts';
import type { SampleSpec, SamplingParams } from '../pipeline/types.ts';
import { UNBOUNDED, fail, sampleCount, samplingParams, type RequestBounds } from './request-bounds.ts';

import { CORE_REQUEST_KEYS } from '../request-options.ts';
import { unknownRequestKey } from '../request-names.ts';

const CORE_KEYS = new Set(CORE_REQUEST_KEYS);

export interface PlannedBatch {
  params: SamplingParams;
  samples: SampleSpec[];
  /** Position of each sample in the call's output (request order). */
  outputRows: number[];
}

/** Every request checked (limits, model shapes, seeds), then expanded into samples in request order. */
export function expandRequests(
  requests: readonly GenerateRequest[], defaults: SamplingParams, randomSeed: () => number, bounds: RequestBounds = UNBOUNDED,
): { samples: SampleSpec[]; params: SamplingParams[] } {
  if (!Array.isArray(requests) || requests.length === 0) throw new Error('generate needs a non-empty array of requests');
  const counts = requests.map((r, i) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) fail(i, 'request', 'must be an object');
    if (typeof r.prompt !== 'string') fail(i, 'prompt', 'must be a string');
    if (r.negativePrompt !== undefined && typeof r.negativePrompt !== 'string') fail(i, 'negativePrompt', 'must be a string');
    return sampleCount(i, r, bounds.limits);
  });
  // Counted before any sample exists: a call of 1e9 samples is refused, not built.
  let total = 0;
  counts.forEach((n, i) => {
    total += n;
    if (total > bounds.limits.maxSamplesPerCall) {
      fail(i, 'numOutputsPerPrompt', `brings the call to ${total} samples, over limits.maxSamplesPerCall (${bounds.limits.maxSamplesPerCall}): split it into several generate calls`);
    }
  });
  const samples: SampleSpec[] = [];
  const params: SamplingParams[] = [];
  requests.forEach((r, i) => {
    const p = samplingParams(i, r, defaults, bounds);
    // No seed: a fresh random one, returned in non_tensor_batch.seed so the sample can be replayed.
    const base = r.seed ?? randomBase(randomSeed, counts[i]);
    for (let k = 0; k < counts[i]; k++) {
      samples.push({ requestIndex: i, outputIndex: k, prompt: r.prompt, negativePrompt: r.negativePrompt ?? '', seed: r.seeds ? r.seeds[k] : base + k, request: r });
      params.push(p);
    }
  });
  return { samples, params };
}

/** The first seed of a request that gives none; its n seeds must stay distinct safe integers. */
function randomBase(randomSeed: () => number, n: number): number {
  const base = randomSeed();
  if (!Number.isSafeInteger(base) || base < 0 || base + (n - 1) > Number.MAX_SAFE_INTEGER) {
    throw new Error(`the randomSeed service returned ${base}: a request of ${n} samples needs a non-negative integer up to 2^53 - ${n}`);
  }
  return base;
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
        throw unknownRequestKey(i, k, [...new Set([...CORE_KEYS, ...claimed])]);
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
  bounds: RequestBounds = UNBOUNDED,
): PlannedBatch[] {
  const { samples, params } = expandRequests(requests, defaults, randomSeed, bounds);
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
