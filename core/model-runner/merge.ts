// Puts the rollouts of several batches back into request order as one rollout.
import type { RolloutData } from '../protocol.ts';
import { numel, tensor, type HostTensor } from '../tensors/tensor.ts';

export interface BatchRollout {
  rollout: RolloutData;
  /** Output row of each of the batch's samples. */
  outputRows: readonly number[];
}

export function mergeRollouts(parts: readonly BatchRollout[], total: number): RolloutData {
  if (parts.length === 1 && parts[0].outputRows.every((r, i) => r === i)) return parts[0].rollout;
  const batch: Record<string, HostTensor> = {};
  for (const key of Object.keys(parts[0].rollout.batch)) {
    const first = parts[0].rollout.batch[key];
    const inner = first.shape.slice(1);
    const row = numel(inner);
    const out = tensor(first.dtype, [total, ...inner]);
    for (const { rollout, outputRows } of parts) {
      const t = rollout.batch[key];
      if (!t || t.dtype !== first.dtype || t.shape.slice(1).join() !== inner.join()) {
        throw new Error(`cannot merge batches: '${key}' is ${t ? `${t.dtype}[${t.shape}]` : 'missing'} in one batch and ${first.dtype}[${first.shape}] in another; ` +
          'requests whose outputs differ in shape (size, steps, capture options) must go in separate generate calls');
      }
      outputRows.forEach((r, i) => (out.data as Float32Array).set((t.data as Float32Array).subarray(i * row, (i + 1) * row), r * row));
    }
    batch[key] = out;
  }
  const nonTensorBatch: Record<string, unknown[]> = {};
  const keys = new Set(parts.flatMap((p) => Object.keys(p.rollout.nonTensorBatch)));
  for (const key of keys) {
    const col = new Array<unknown>(total).fill(null);
    for (const { rollout, outputRows } of parts) outputRows.forEach((r, i) => (col[r] = rollout.nonTensorBatch[key]?.[i] ?? null));
    nonTensorBatch[key] = col;
  }
  // Meta that agrees across batches stays meta; what differs becomes per-sample data.
  const metaInfo: Record<string, unknown> = {};
  const metaKeys = new Set(parts.flatMap((p) => Object.keys(p.rollout.metaInfo)));
  for (const key of metaKeys) {
    const values = parts.map((p) => JSON.stringify(p.rollout.metaInfo[key]));
    if (values.every((v) => v === values[0])) {
      metaInfo[key] = parts[0].rollout.metaInfo[key];
    } else {
      const col = new Array<unknown>(total).fill(null);
      for (const { rollout, outputRows } of parts) outputRows.forEach((r) => (col[r] = rollout.metaInfo[key]));
      nonTensorBatch[key] = col;
    }
  }
  return { batch, nonTensorBatch, metaInfo };
}
