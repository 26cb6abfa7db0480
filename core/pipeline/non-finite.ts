// Non-finite outputs are an error, not a flag: a NaN sample would poison a trainer's loss
// unnoticed. The error names the request, the sample, its seed and the tensor
// (docs/reliability.md); the worker keeps serving.
import type { RolloutData } from '../protocol.ts';
import { describeNonFinite, firstNonFinite } from '../tensors/finite.ts';
import { numel } from '../tensors/tensor.ts';
import type { SampleSpec } from './types.ts';

const SHOWN = 4;

export function checkFinite(rollout: RolloutData, samples: readonly SampleSpec[]): void {
  const problems: string[] = [];
  for (const [key, t] of Object.entries(rollout.batch)) {
    const row = numel(t.shape.slice(1));
    samples.forEach((s, b) => {
      const sample = { dtype: t.dtype, shape: t.shape.slice(1), data: t.data.subarray(b * row, (b + 1) * row) as typeof t.data };
      const at = firstNonFinite(sample);
      if (at >= 0) problems.push(`request ${s.requestIndex} sample ${s.outputIndex} (seed ${s.seed}): ${key} holds ${describeNonFinite(sample, at)} of the sample`);
    });
  }
  if (problems.length) {
    const more = problems.length > SHOWN ? `; ... (${problems.length} in all)` : '';
    throw new Error(`the rollout holds non-finite values: ${problems.slice(0, SHOWN).join('; ')}${more}. ` +
      'Inputs are checked before work, so the weights (a loadWeights, an adapter) or the model overflowed.');
  }
}
