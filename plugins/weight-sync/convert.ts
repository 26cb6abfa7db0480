// Checks named tensors against a component's parameters (name, shape) and converts them to the
// model's dtype. All problems are gathered into one error; on any problem nothing is returned.
import { DTYPE_ARRAY, describeNonFinite, firstNonFinite, FLOAT_DTYPES, fromFloat32, toFloat32, type FloatDType, type HostTensor, type ParameterInfo } from '../../core/public.ts';
import type { ReadTensors } from './read-source.ts';

const SHOWN = 8;

export function checkAndConvert(component: string, params: ReadonlyMap<string, ParameterInfo>, read: ReadTensors): Map<string, HostTensor> {
  const problems: string[] = [];
  if (read.tensors.length === 0) problems.push('it holds no tensors');
  for (const [name, t] of read.tensors) {
    const p = params.get(name);
    if (!p) problems.push(`unknown parameter '${name}'${hint(component, name, params)}`);
    else if (!FLOAT_DTYPES.has(t.dtype)) problems.push(`'${name}' is ${t.dtype}; only ${[...FLOAT_DTYPES].join(', ')} convert to the model's ${p.dtype}`);
    else if (!FLOAT_DTYPES.has(p.dtype)) problems.push(`'${name}' is a ${p.dtype} parameter, which loadWeights cannot convert into`);
    else if (!sameShape(t.shape, p.shape)) problems.push(`'${name}' has shape [${t.shape}], the model's is [${p.shape}]`);
    else if (!read.finite) {
      const at = firstNonFinite(t);
      if (at >= 0) problems.push(`'${name}' holds ${describeNonFinite(t, at)}`);
    }
  }
  const refuseIfAny = () => {
    if (!problems.length) return;
    const more = problems.length > SHOWN ? `; ... (${problems.length} problems in all)` : '';
    throw new Error(`loadWeights(${component}, ${read.what}): nothing applied: ${problems.slice(0, SHOWN).join('; ')}${more}`);
  };
  refuseIfAny();
  // Copies of caller memory go into one block: one allocation instead of one per tensor, and
  // memory the allocator returns whole to the OS when the update's tensors are all dropped.
  // Shared memory (a SharedArrayBuffer, which crosses threads without a clone) stays the caller's.
  const copies = read.tensors.filter(([n, t]) => t.dtype === params.get(n)!.dtype && (!read.owned || t.data.buffer instanceof SharedArrayBuffer));
  const block = new ArrayBuffer(copies.reduce((s, [, t]) => s + align8(t.data.byteLength), 0));
  const copied = new Map<string, HostTensor['data']>();
  let offset = 0;
  for (const [name, t] of copies) {
    const Ctor = DTYPE_ARRAY[t.dtype];
    const view = new Ctor(block, offset, t.data.length);
    (view as Float32Array).set(t.data as Float32Array);
    copied.set(name, view);
    offset += align8(t.data.byteLength);
  }
  const out = new Map<string, HostTensor>();
  for (const [name, t] of read.tensors) {
    const target = params.get(name)!.dtype as FloatDType;
    const converted: HostTensor = { dtype: target, shape: [...t.shape], data: copied.get(name) ?? convert(t, target) };
    // A finite F32 value can overflow a narrower dtype (7e4 in F16).
    const at = target === t.dtype ? -1 : firstNonFinite(converted);
    if (at >= 0) problems.push(`'${name}' becomes ${describeNonFinite(converted, at)} in the model's ${target}`);
    out.set(name, converted);
  }
  refuseIfAny();
  return out;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** Our own arrays as they are (same dtype, not shared: copied above otherwise), or a conversion. */
function convert(t: HostTensor, target: FloatDType): HostTensor['data'] {
  if (t.dtype === target) return t.data;
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
