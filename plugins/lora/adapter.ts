// An adapter checked against the model: per target module, lora_A [r, in] and lora_B [out, r] as
// float32, for the transformer's Linear weight <module>.weight [out, in].
import { describeNonFinite, firstNonFinite, FLOAT_DTYPES, toFloat32, type HostTensor, type ParameterInfo } from '../../core/public.ts';
import { targets, type LoraConfig } from './peft-config.ts';

export interface LoraModule {
  module: string;
  /** The model parameter it changes. */
  weight: string;
  out: number;
  in: number;
  /** [r, in] */
  A: Float32Array;
  /** [out, r] */
  B: Float32Array;
}

export interface Adapter {
  readonly name: string;
  readonly config: LoraConfig;
  readonly modules: readonly LoraModule[];
  readonly bytes: number;
  /** The folder it came from, or 'memory'. */
  readonly origin: string;
}

const KEY = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;

export function buildAdapter(
  name: string, config: LoraConfig, tensors: Iterable<[string, HostTensor]>,
  params: ReadonlyMap<string, ParameterInfo>, origin: string,
): Adapter {
  const where = `adapter '${name}'`;
  const pairs = new Map<string, { A?: HostTensor; B?: HostTensor }>();
  for (const [key, t] of tensors) {
    const m = KEY.exec(key);
    if (!m) {
      throw new Error(`${where}: unexpected tensor '${key}': an adapter holds base_model.model.<module>.lora_A.weight / lora_B.weight only ` +
        '(DoRA magnitudes, biases and modules_to_save are not supported)');
    }
    if (!FLOAT_DTYPES.has(t.dtype)) throw new Error(`${where}: tensor '${key}' is ${t.dtype}; only ${[...FLOAT_DTYPES].join(', ')} are supported`);
    const entry = pairs.get(m[1]) ?? {};
    entry[m[2] as 'A' | 'B'] = t;
    pairs.set(m[1], entry);
  }
  if (pairs.size === 0) throw new Error(`${where}: no lora_A / lora_B tensors`);

  // Linear modules of the model: parameters <module>.weight of rank 2.
  const linear = new Map<string, ParameterInfo>();
  const others = new Set<string>();
  for (const [n, p] of params) {
    if (!n.endsWith('.weight')) continue;
    (p.shape.length === 2 ? linear.set(n.slice(0, -7), p) : others.add(n.slice(0, -7)));
  }
  const targeted = [...linear.keys()].filter((m) => targets(config, m));
  const hit = [...others].find((m) => targets(config, m));
  if (hit) throw new Error(`${where}: target module '${hit}' is not a Linear layer (its weight is not 2-D)`);
  const lacking = Array.isArray(config.targetModules)
    ? config.targetModules.filter((t) => ![...linear.keys()].some((m) => m === t || m.endsWith(`.${t}`)))
    : targeted.length ? [] : [String(config.targetModules)];
  if (lacking.length) {
    throw new Error(`${where}: the model has no module matching target_modules ${lacking.map((t) => `'${t}'`).join(', ')} ` +
      `(transformer Linear modules: ${[...linear.keys()].slice(0, 8).join(', ')}${linear.size > 8 ? ', ...' : ''})`);
  }

  const modules: LoraModule[] = [];
  let bytes = 0;
  for (const [module, { A, B }] of pairs) {
    const p = linear.get(module);
    if (!p) throw new Error(`${where}: tensors for module '${module}', which the transformer lacks (or is not a Linear layer)`);
    if (!targets(config, module)) throw new Error(`${where}: tensors for module '${module}', which target_modules does not cover`);
    if (!A || !B) throw new Error(`${where}: module '${module}' has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'}`);
    const [out, inF] = p.shape;
    const r = config.r;
    if (A.shape.join() !== `${r},${inF}`) throw new Error(`${where}: ${module}.lora_A is [${A.shape}], expected [r=${r}, in=${inF}]`);
    if (B.shape.join() !== `${out},${r}`) throw new Error(`${where}: ${module}.lora_B is [${B.shape}], expected [out=${out}, r=${r}]`);
    for (const [which, t] of [['A', A], ['B', B]] as const) {
      const at = firstNonFinite(t);
      if (at >= 0) throw new Error(`${where}: ${module}.lora_${which} holds ${describeNonFinite(t, at)}; an adapter's weights must be finite`);
    }
    const a = new Float32Array(toFloat32(A)); // own copies: the caller may reuse its buffers
    const b = new Float32Array(toFloat32(B));
    bytes += a.byteLength + b.byteLength;
    modules.push({ module, weight: `${module}.weight`, out, in: inF, A: a, B: b });
  }
  const untrained = targeted.filter((m) => !pairs.has(m));
  if (untrained.length) {
    throw new Error(`${where}: target_modules covers ${untrained.slice(0, 5).join(', ')}${untrained.length > 5 ? ', ...' : ''} ` +
      'but the adapter has no lora_A / lora_B for it (an adapter for another architecture?)');
  }
  return { name, config, modules, bytes, origin };
}
