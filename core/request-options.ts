// Errors for plugins' request options, in core's one format (core/validation.ts):
// "request 2: invalid sde option: sde.window.size: Too small ...".
import type { z } from 'zod';
import { invalidError } from './validation.ts';

/** The request keys core reads itself; every other key belongs to the plugin that declared it. */
export const CORE_REQUEST_KEYS: readonly string[] = ['prompt', 'negativePrompt', 'numOutputsPerPrompt', 'seed', 'seeds', 'height', 'width', 'steps', 'guidanceScale'];

export function optionError(requestIndex: number, key: string, error: z.ZodError): Error {
  return invalidError(`request ${requestIndex}`, `${key} option`, error, key);
}
