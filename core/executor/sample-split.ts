// Splits one generate call into parts by samples, and merges the parts' rollouts back in request
// order. A sample depends only on its seed and parameters (batch independence), so the merged
// rollout is bit-identical to the call run whole; seeds are fixed here, before the split.
import { randomInt } from 'node:crypto';
import type { GenerateRequest, RolloutData } from '../protocol.ts';
import { sampleCount, type Limits } from '../model-runner/request-bounds.ts';
import { mergeRollouts } from '../model-runner/merge.ts';

export interface CallPart {
  /** Sub-requests with explicit `seeds` (no `seed`): the part's samples in call order. */
  requests: GenerateRequest[];
  /** The original request index of each sub-request (to name it in errors). */
  origin: number[];
  /** Output rows of the part's samples in the whole call: [start, end). */
  start: number;
  end: number;
}

/**
 * Up to `parts` contiguous parts of near-equal sample counts (fewer when there are fewer samples).
 * Sample counts and seeds are checked first (errors name the request); a request without seeds
 * gets a random first seed here, so that every part agrees on it.
 */
export function splitBySamples(requests: readonly GenerateRequest[], parts: number, limits: Limits, randomSeed: () => number = defaultSeed): CallPart[] {
  const samples = samplesOf(requests, limits, randomSeed);
  return cut(requests, samples, Math.min(parts, samples.length));
}

/** Parts of at most `maxSamples` samples each, near-equal. */
export function splitBySize(requests: readonly GenerateRequest[], maxSamples: number, limits: Limits, randomSeed: () => number = defaultSeed): CallPart[] {
  const samples = samplesOf(requests, limits, randomSeed);
  return cut(requests, samples, Math.ceil(samples.length / maxSamples));
}

const defaultSeed = () => randomInt(0, 2 ** 47);

interface Sample { request: number; seed: number }

function samplesOf(requests: readonly GenerateRequest[], limits: Limits, randomSeed: () => number): Sample[] {
  if (!Array.isArray(requests) || requests.length === 0) throw new Error('generate needs a non-empty array of requests');
  const samples: Sample[] = [];
  requests.forEach((r, i) => {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new Error(`request ${i}: request must be an object`);
    const n = sampleCount(i, r, limits);
    if (samples.length + n > limits.maxSamplesPerCall) {
      throw new Error(`request ${i}: numOutputsPerPrompt brings the call to ${samples.length + n} samples, over limits.maxSamplesPerCall (${limits.maxSamplesPerCall}): split it into several generate calls`);
    }
    const base = r.seeds ? 0 : (r.seed ?? randomSeed());
    for (let k = 0; k < n; k++) samples.push({ request: i, seed: r.seeds ? r.seeds[k] : base + k });
  });
  return samples;
}

function cut(requests: readonly GenerateRequest[], samples: readonly Sample[], count: number): CallPart[] {
  const out: CallPart[] = [];
  for (let p = 0; p < count; p++) {
    const start = Math.floor((p * samples.length) / count);
    const end = Math.floor(((p + 1) * samples.length) / count);
    const part: CallPart = { requests: [], origin: [], start, end };
    for (let s = start; s < end; s++) {
      const { request, seed } = samples[s];
      if (part.origin.at(-1) === request) {
        (part.requests.at(-1)!.seeds as number[]).push(seed);
        continue;
      }
      const { seed: _seed, numOutputsPerPrompt: _n, ...rest } = requests[request];
      part.requests.push({ ...rest, seeds: [seed] });
      part.origin.push(request);
    }
    for (const r of part.requests) r.numOutputsPerPrompt = (r.seeds as number[]).length;
    out.push(part);
  }
  return out;
}

/** A part's error names its sub-request; this names the caller's request instead. */
export function originError(e: unknown, part: CallPart): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  const m = /^request (\d+): /.exec(err.message);
  if (m && part.origin[Number(m[1])] !== undefined) err.message = `request ${part.origin[Number(m[1])]}: ${err.message.slice(m[0].length)}`;
  return err;
}

/**
 * The parts' rollouts as one, in request order (core's merge: meta that differs between parts
 * becomes per-sample data, as it does between the batches of one worker's call).
 */
export function mergeParts(parts: readonly CallPart[], rollouts: readonly RolloutData[]): RolloutData {
  const total = parts.at(-1)!.end;
  // A key that one part already turned into per-sample data is per-sample in every part.
  const perSample = new Set(rollouts.flatMap((r) => Object.keys(r.nonTensorBatch)));
  const aligned = rollouts.map((r, p) => {
    const rows = parts[p].end - parts[p].start;
    const metaInfo = { ...r.metaInfo };
    const nonTensorBatch = { ...r.nonTensorBatch };
    for (const key of Object.keys(metaInfo)) {
      if (!perSample.has(key) || key in nonTensorBatch) continue;
      nonTensorBatch[key] = new Array(rows).fill(metaInfo[key]);
      delete metaInfo[key];
    }
    return { rollout: { batch: r.batch, nonTensorBatch, metaInfo }, outputRows: range(parts[p].start, parts[p].end), requests: rowOrigins(parts[p]) };
  });
  return mergeRollouts(aligned, total);
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

function rowOrigins(part: CallPart): number[] {
  return part.requests.flatMap((r, i) => new Array((r.seeds as number[]).length).fill(part.origin[i]));
}
