// Which rollout calls may share one generate call. A merged call must give each caller exactly
// what it would get alone: the same samples (the batch-independence rule: a sample depends only
// on its seed and parameters) and the same rollout layout. Meta that differs between a call's
// batches becomes a per-sample column, and outputs that differ are refused (one call, one
// rollout), so only calls whose requests agree on everything but prompt and seeds are merged.
import type { GenerateRequest } from '../core/public.ts';

/** Per-sample fields: they change which samples run, never the rollout's layout or meta. */
const PER_SAMPLE = new Set(['prompt', 'negativePrompt', 'numOutputsPerPrompt', 'seed', 'seeds']);

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/** The options of a request that shape its rollout, as one string. */
export function layoutKey(request: GenerateRequest): string {
  return canonical(Object.fromEntries(Object.entries(request).filter(([k]) => !PER_SAMPLE.has(k))));
}

/** Samples a request asks for when well formed; undefined otherwise (the worker will say why). */
function samplesOf(r: GenerateRequest): number | undefined {
  const n = r.numOutputsPerPrompt;
  if (n !== undefined && !(Number.isSafeInteger(n) && n > 0)) return undefined;
  if (r.seeds === undefined) return n ?? 1;
  if (!Array.isArray(r.seeds) || r.seeds.length === 0 || (n !== undefined && n !== r.seeds.length)) return undefined;
  return r.seeds.length;
}

export interface CallShape {
  /** Samples per request, in order. */
  counts: number[];
  samples: number;
  /** Calls with equal keys may merge; undefined: this call runs alone. */
  key: string | undefined;
}

/** A call's sample counts and merge key; a call that mixes layouts or is malformed runs alone. */
export function callShape(requests: GenerateRequest[]): CallShape {
  const counts = requests.map(samplesOf);
  const wellFormed = counts.every((c): c is number => c !== undefined);
  const keys = new Set(requests.map(layoutKey));
  const ok = wellFormed && keys.size === 1;
  const samples = wellFormed ? (counts as number[]).reduce((a, b) => a + b, 0) : requests.length;
  return { counts: wellFormed ? counts as number[] : [], samples, key: ok ? [...keys][0] : undefined };
}
