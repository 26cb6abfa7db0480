// Tensors inside RPC arguments and results. JSON cannot carry them, so a call with tensors travels
// as one safetensors body: each tensor under its own name, and the JSON value in the metadata with
// {"__tensor__": name} where a tensor stood (the Python client builds and reads the same shape).
import { DTYPE_BYTES, type HostTensor } from '../core/public.ts';
import { HttpError } from './http-error.ts';

export const TENSOR_REF = '__tensor__';

function isHostTensor(v: unknown): v is HostTensor {
  if (v === null || typeof v !== 'object') return false;
  const t = v as Partial<HostTensor>;
  return typeof t.dtype === 'string' && Object.hasOwn(DTYPE_BYTES, t.dtype) && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}

/** Replaces {"__tensor__": name} by the named tensor; unknown names are errors naming the path. */
export function attachTensors(value: unknown, tensors: ReadonlyMap<string, HostTensor>, path = 'args'): unknown {
  if (Array.isArray(value)) return value.map((v, i) => attachTensors(v, tensors, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === TENSOR_REF) {
    const name = (value as Record<string, unknown>)[TENSOR_REF];
    const t = typeof name === 'string' ? tensors.get(name) : undefined;
    if (!t) throw new HttpError(400, path, `${path}: no tensor named ${JSON.stringify(name)} in the body (it has: ${[...tensors.keys()].join(', ') || 'none'})`);
    return t;
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, attachTensors(v, tensors, `${path}.${k}`)]));
}

/** The value with every tensor replaced by a reference, and the tensors by name ("t0", "t1", ...). */
export function detachTensors(value: unknown): { json: unknown; tensors: Map<string, HostTensor> } {
  const tensors = new Map<string, HostTensor>();
  const walk = (v: unknown, depth: number): unknown => {
    if (isHostTensor(v)) {
      const name = `t${tensors.size}`;
      tensors.set(name, v);
      return { [TENSOR_REF]: name };
    }
    if (depth > 32 || v === null || typeof v !== 'object') return v;
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth + 1)]));
  };
  return { json: walk(value, 0), tensors };
}
