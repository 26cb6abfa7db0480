// Errors for plugins' request options that name the field:
// "request 2: invalid sde option: sde.window.size: Too small ...".
import type { z } from 'zod';

/** "prefix.path[0].field: message; ..." for every issue. */
export function describeIssues(prefix: string, error: z.ZodError): string {
  return error.issues.map((i) => {
    let path = prefix;
    for (const p of i.path) path += typeof p === 'number' ? `[${p}]` : path ? `.${String(p)}` : String(p);
    return `${path || '(root)'}: ${i.message}`;
  }).join('; ');
}

export function optionError(requestIndex: number, key: string, error: z.ZodError): Error {
  return new Error(`request ${requestIndex}: invalid ${key} option: ${describeIssues(key, error)}`);
}
