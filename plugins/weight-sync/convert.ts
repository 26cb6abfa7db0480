// Checks named tensors against a component's parameters (name, shape) and converts them to the
// model's dtype. All problems are gathered into one error; on any problem nothing is returned.
import type { ParameterInfo } from '../../core/model/weights.ts';
import { fromFloat32, toFloat32, type FloatDType } from '../../core/tensors/dtype-convert.ts';
import type { DType, HostTensor } from '../../core/tensors/tensor.ts';
import type { ReadTensors } from './read-source.ts';

const FLOAT: readonly DType[] = ['F32', 'F16', 'BF16', 'F64'];
const SHOWN = 8;

export function checkAndConvert(component: string, params: ReadonlyMap<string, ParameterInfo>, read: ReadTensors): Map<string, HostTensor> {
  const problems: string[] = [];
  if (read.tensors.length === 0) problems.push('it holds no tensors');
  for (const [name, t] of read.tensors) {
    const p = params.get(name);
    if (!p) problems.push(`unknown parameter '${name}'${hint(component, name, params)}`);
    else if (!FLOAT.includes(t.dtype)) problems.push(`'${name}' is ${t.dtype}; only ${FLOAT.join(', ')} convert to the model's ${p.dtype}`);
    else if (!FLOAT.includes(p.dtype)) problems.push(`'${name}' is a ${p.dtype} parameter, which loadWeights cannot convert into`);
    else if (!sameShape(t.shape, p.shape)) problems.push(`'${name}' has shape [${t.shape}], the model's is [${p.shape}]`);
  }
  if (problems.length) {
    const more = problems.length > SHOWN ? `; ... (${problems.length} problems in all)` : '';
    throw new Error(`loadWeights(${component}, ${read.what}): nothing applied: ${problems.slice(0, SHOWN).join('; ')}${more}`);
  }
  const out = new Map<string, HostTensor>();
  for (const [name, t] of read.tensors) {
    const target = params.get(name)!.dtype as FloatDType;
    out.set(name, { dtype: target, shape: [...t.shape], data: convert(t, target, read.owned) });
  }
  return out;
}

/** One pass per tensor: a copy when dtypes match (unless the arrays are already ours), else a conversion. */
function convert(t: HostTensor, target: FloatDType, owned: boolean): HostTensor['data'] {
  if (t.dtype === target) return owned ? t.data : t.data.slice();
  if (target === 'F32') return toFloat32(t); // fresh for every dtype but F32, handled above
  return fromFloat32(toFloat32(t), target);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A nudge for the usual mistake: names prefixed with the component or a wrapper module. */
function hint(component: string, name: string, params: ReadonlyMap<string, ParameterInfo>): string {
  for (const prefix of [`${component}.`, 'model.', 'module.', 'base_model.model.']) {
    if (name.startsWith(prefix) && params.has(name.slice(prefix.length))) {
      return ` (names are relative to the component: did you mean '${name.slice(prefix.length)}'?)`;
    }
  }
  return ` for component ${component}`;
}
