// One rollout needs every tensor for every sample: the batches of a call must return the same
// tensors (key, dtype, per-sample shape). Describes, per key, which requests disagree.
import type { OutputSpec } from '../pipeline/types.ts';
import { constants } from 'node:buffer';
import { numel, type HostTensor } from '../tensors/tensor.ts';

/** The tensors one batch returns (or will return), with the requests its samples come from. */
export interface BatchOutputs {
  readonly tensors: Readonly<Record<string, OutputSpec>>;
  readonly requests: readonly number[];
}

const SHOWN_KEYS = 4;
const SHOWN_REQUESTS = 8;

export function specsOf(batch: Readonly<Record<string, HostTensor>>): Record<string, OutputSpec> {
  return Object.fromEntries(Object.entries(batch).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape.slice(1) }]));
}

const describeSpec = (s: OutputSpec | undefined) => (s ? `${s.dtype}[B, ${s.shape.join(', ')}]`.replace(', ]', ']') : 'absent');

function requestList(requests: Iterable<number>): string {
  const sorted = [...new Set(requests)].sort((a, b) => a - b);
  const shown = sorted.slice(0, SHOWN_REQUESTS).join(', ') + (sorted.length > SHOWN_REQUESTS ? `, ... (${sorted.length} requests)` : '');
  return `${sorted.length === 1 ? 'request' : 'requests'} ${shown}`;
}

/** undefined when every batch returns the same tensors; else what differs, key by key. */
export function describeDisagreement(batches: readonly BatchOutputs[]): string | undefined {
  const keys = [...new Set(batches.flatMap((b) => Object.keys(b.tensors)))].sort();
  const problems: string[] = [];
  for (const key of keys) {
    const variants = new Map<string, number[]>();
    for (const b of batches) {
      const d = describeSpec(b.tensors[key]);
      variants.set(d, [...(variants.get(d) ?? []), ...b.requests]);
    }
    if (variants.size > 1) problems.push(`'${key}' is ${[...variants].map(([d, reqs]) => `${d} for ${requestList(reqs)}`).join(' but ')}`);
  }
  if (!problems.length) return undefined;
  const more = problems.length > SHOWN_KEYS ? `; ... (${problems.length} tensors differ)` : '';
  return problems.slice(0, SHOWN_KEYS).join('; ') + more;
}

/** Refuses a call whose batches would return different tensors, before any batch runs. */
export function checkOutputAgreement(batches: readonly BatchOutputs[]): void {
  const problem = describeDisagreement(batches);
  if (problem) {
    throw new Error(`generate: these requests cannot share one rollout, whose tensors every sample must have: ${problem}. ` +
      'Send them in separate generate calls, or give them the same size, steps and capture/sde options.');
  }
}

/**
 * Refuses a call whose merged tensors would not fit one typed array (this engine's limit,
 * buffer.constants.MAX_LENGTH elements), before any batch runs instead of after all of them.
 */
export function checkRolloutSize(tensors: Readonly<Record<string, OutputSpec>>, samples: number): void {
  for (const [key, spec] of Object.entries(tensors)) {
    const n = samples * numel(spec.shape);
    if (n > constants.MAX_LENGTH) {
      throw new Error(`generate: the call's '${key}' would hold ${samples} samples x [${spec.shape.join(', ')}] = ${n} values, ` +
        `more than one array holds (${constants.MAX_LENGTH}): split it into several generate calls`);
    }
  }
}
