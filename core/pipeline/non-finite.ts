// Non-finite outputs are an error, not a flag: a NaN sample would poison a trainer's loss
// unnoticed. The error names the request, the sample, its seed and the tensor
// (docs/reliability.md); the worker keeps serving.
import type { RolloutData } from '../protocol.ts';
import { describeNonFinite, firstNonFinite } from '../tensors/finite.ts';
import { FLOAT_DTYPES, numel } from '../tensors/tensor.ts';
import type { SampleSpec } from './types.ts';

const SHOWN = 4;

export function checkFinite(rollout: RolloutData, samples: readonly SampleSpec[]): void {
  const problems: string[] = [];
  for (const [key, t] of Object.entries(rollout.batch)) {
    if (!FLOAT_DTYPES.has(t.dtype)) continue;
    const row = numel(t.shape.slice(1));
    // One scan of the whole tensor; a hit names its sample and the scan goes on from the next row.
    for (let at = firstNonFinite(t); at >= 0; at = firstNonFinite(t, (Math.floor(at / row) + 1) * row)) {
      const b = Math.floor(at / row);
      const s = samples[b];
      const sample = { dtype: t.dtype, shape: t.shape.slice(1), data: t.data.subarray(b * row, (b + 1) * row) as typeof t.data };
      problems.push(`request ${s.requestIndex} sample ${s.outputIndex} (seed ${s.seed}): ${key} holds ${describeNonFinite(sample, at - b * row)} of the sample`);
    }
  }
  if (problems.length) {
    const more = problems.length > SHOWN ? `; ... (${problems.length} in all)` : '';
    throw new Error(`the rollout holds non-finite values: ${problems.slice(0, SHOWN).join('; ')}${more}. ` +
      'Inputs are checked before work, so the weights (a loadWeights, an adapter) or the model overflowed.');
  }
}
