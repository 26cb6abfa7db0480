// The merged transformer weights of an adapter at a scale, as a new WeightMap: unchanged
// parameters are the base map's own tensors (shared, not copied); each target module's weight is
//   W'[o, i] = fround(W[o, i] + c * sum_k B[o, k] * A[k, i]),   c = scale * scaling
// with the sum taken in float64 in k order (exact to float32 rounding; reproducible bit for bit).
import { fromFloat32, toFloat32, type FloatDType, type HostTensor, type WeightMap } from '../../core/public.ts';
import type { Adapter, LoraModule } from './adapter.ts';

export interface Merged {
  map: WeightMap;
  /** Bytes of the tensors this map owns (the merged weights). */
  bytes: number;
}

export function mergeAdapter(base: WeightMap, adapter: Adapter, scale: number): Merged {
  const c = scale * adapter.config.scaling;
  const map = new Map(base);
  let bytes = 0;
  for (const m of adapter.modules) {
    const w = base.get(m.weight);
    if (!w) throw new Error(`adapter '${adapter.name}': the transformer has no parameter '${m.weight}' now`);
    const merged = mergeModule(toFloat32(w), m, c);
    const data = w.dtype === 'F32' ? merged : fromFloat32(merged, w.dtype as FloatDType);
    const t: HostTensor = { dtype: w.dtype, shape: w.shape, data };
    map.set(m.weight, t);
    bytes += data.byteLength;
  }
  return { map, bytes };
}

function mergeModule(W: Float32Array, m: LoraModule, c: number): Float32Array {
  const { out, in: n, A, B } = m;
  const r = A.length / n;
  const merged = new Float32Array(out * n);
  const acc = new Float64Array(n);
  for (let o = 0; o < out; o++) {
    acc.fill(0);
    for (let k = 0; k < r; k++) {
      const b = B[o * r + k];
      const row = k * n;
      for (let i = 0; i < n; i++) acc[i] += b * A[row + i];
    }
    const at = o * n;
    for (let i = 0; i < n; i++) merged[at + i] = W[at + i] + c * acc[i];
  }
  return merged;
}
