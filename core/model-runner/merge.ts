// Puts the rollouts of several batches back into request order as one rollout.
import type { RolloutData } from '../protocol.ts';
import { numel, tensor, type HostTensor } from '../tensors/tensor.ts';
import { describeDisagreement, specsOf } from './output-agreement.ts';

export interface BatchRollout {
  rollout: RolloutData;
  /** Output row of each of the batch's samples. */
  outputRows: readonly number[];
  /** Request index of each of the batch's samples (for errors). */
  requests: readonly number[];
}

export function mergeRollouts(parts: readonly BatchRollout[], total: number): RolloutData {
  if (parts.length === 1 && parts[0].outputRows.every((r, i) => r === i)) return parts[0].rollout;
  // The plan checked what plugins declare; this catches what a pipeline or plugin adds undeclared.
  const problem = describeDisagreement(parts.map((p) => ({ tensors: specsOf(p.rollout.batch), requests: p.requests })));
  if (problem) throw new Error(`cannot merge the batches of this call into one rollout: ${problem} (an output no plugin declared in planOutputs)`);
  const batch: Record<string, HostTensor> = {};
  for (const key of Object.keys(parts[0].rollout.batch)) {
    const first = parts[0].rollout.batch[key];
    const inner = first.shape.slice(1);
    const row = numel(inner);
    const out = tensor(first.dtype, [total, ...inner]);
    for (const { rollout, outputRows } of parts) {
      const t = rollout.batch[key];
      outputRows.forEach((r, i) => (out.data as Float32Array).set((t.data as Float32Array).subarray(i * row, (i + 1) * row), r * row));
    }
    batch[key] = out;
  }
  // Per-sample data a batch lacks is null for its samples (JSON-safe; never undefined).
  const column = (valueOf: (rollout: RolloutData, i: number) => unknown): unknown[] => {
    const col = new Array<unknown>(total).fill(null);
    for (const { rollout, outputRows } of parts) outputRows.forEach((r, i) => (col[r] = valueOf(rollout, i) ?? null));
    return col;
  };
  const nonTensorBatch: Record<string, unknown[]> = {};
  for (const key of new Set(parts.flatMap((p) => Object.keys(p.rollout.nonTensorBatch)))) {
    nonTensorBatch[key] = column((rollout, i) => rollout.nonTensorBatch[key]?.[i]);
  }
  // Meta that agrees across batches stays meta; what differs becomes per-sample data.
  const metaInfo: Record<string, unknown> = {};
  for (const key of new Set(parts.flatMap((p) => Object.keys(p.rollout.metaInfo)))) {
    const values = parts.map((p) => JSON.stringify(p.rollout.metaInfo[key]));
    if (values.every((v) => v === values[0])) metaInfo[key] = parts[0].rollout.metaInfo[key];
    else if (key in nonTensorBatch) throw new Error(`cannot merge the batches of this call: '${key}' is both per-sample data and differing meta`);
    else nonTensorBatch[key] = column((rollout) => rollout.metaInfo[key]);
  }
  return { batch, nonTensorBatch, metaInfo };
}
