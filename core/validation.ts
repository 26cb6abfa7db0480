// One error format for everything a zod schema checks (config, plugin options, request options,
// RPC arguments): "<where>: invalid <what>: <path>: <problem>; ...", with paths written as in
// JavaScript ("sde.window.size", "roots[0]", "(root)" for the value itself).
import type { z } from 'zod';

/** "prefix.path[0].field: message; ..." for every issue. */
export function describeZodError(error: z.ZodError, prefix = ''): string {
  return error.issues.map((i) => {
    let path = prefix;
    for (const p of i.path) path += typeof p === 'number' ? `[${p}]` : path ? `.${String(p)}` : String(p);
    return `${path || '(root)'}: ${i.message}`;
  }).join('; ');
}

/** "<where>: invalid <what>: <issues>". */
export function invalidError(where: string, what: string, error: z.ZodError, prefix = ''): Error {
  return new Error(`${where}: invalid ${what}: ${describeZodError(error, prefix)}`);
}

/** Parses `value` or throws the one error format. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where: string, what: string, prefix = ''): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidError(where, what, parsed.error, prefix);
  return parsed.data;
}

/**
 * A value as a message shows it: JSON, except that NaN and +-Infinity stay themselves (JSON writes
 * them as null, which names the wrong problem), and undefined is "undefined".
 */
export function showValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint' || v === undefined) return String(v);
  const marked = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? `\u0000${x}` : x));
  return marked === undefined ? String(v) : marked.replace(/"\\u0000(-?Infinity|NaN)"/g, '$1');
}
