// A seeded PEFT adapter for the benchmarks: rank 4 on every query projection (`qkv` in the
// embedded model, `to_q` in the dummy architecture), small values so that outputs stay finite.
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';
import { f32, type HostTensor } from '../core/tensors/tensor.ts';
import type { WeightMap } from '../core/model/weights.ts';

export function queryAdapter(base: WeightMap, seed = 1, rank = 4) {
  const tensors: Record<string, HostTensor> = {};
  const target = [...base.keys()].some((n) => n.endsWith('.qkv.weight')) ? 'qkv' : 'to_q';
  let stream = 0;
  const factor = (shape: number[]) => {
    const t = f32(shape);
    fillGaussian(seed, stream++, t.data);
    for (let i = 0; i < t.data.length; i++) t.data[i] *= 0.02;
    return t;
  };
  for (const [name, t] of base) {
    if (!name.endsWith(`.${target}.weight`)) continue;
    const [out, inp] = t.shape;
    const module = name.slice(0, -'.weight'.length);
    tensors[`base_model.model.${module}.lora_A.weight`] = factor([rank, inp]);
    tensors[`base_model.model.${module}.lora_B.weight`] = factor([out, rank]);
  }
  return { config: { r: rank, lora_alpha: rank, target_modules: [target] }, tensors };
}
