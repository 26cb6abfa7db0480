// One naming scheme a user can predict: requests and RPC arguments are camelCase. The names
// other libraries give the same things (diffusers' pipeline arguments, vLLM's SamplingParams) are
// refused, never accepted as aliases, with the name to use: two names for one thing would let
// two spellings of one request batch apart and leave every plugin to handle both.
import { closest, distance } from 'fastest-levenshtein';

/** diffusers' and vLLM's names for core's request keys, with the key to use. */
export const FOREIGN_REQUEST_NAMES: Readonly<Record<string, string>> = Object.freeze({
  num_inference_steps: 'steps',
  num_steps: 'steps',
  guidance_scale: 'guidanceScale',
  true_cfg_scale: 'guidanceScale',
  cfg_scale: 'guidanceScale',
  guidance: 'guidanceScale',
  num_images_per_prompt: 'numOutputsPerPrompt',
  num_outputs_per_prompt: 'numOutputsPerPrompt',
  n: 'numOutputsPerPrompt',
  negative_prompt: 'negativePrompt',
  generator: 'seed',
});

/** Lower case without separators: "guidance_scale" and "guidanceScale" compare equal. */
const fold = (s: string) => s.replace(/[_-]/g, '').toLowerCase();

/** The known name `key` most likely means (another library's name, another case, a typo), if any. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  if (!known.length) return undefined;
  const foreign = Object.hasOwn(FOREIGN_REQUEST_NAMES, key) ? FOREIGN_REQUEST_NAMES[key] : undefined;
  if (foreign && known.includes(foreign)) return foreign;
  const same = known.find((k) => fold(k) === fold(key));
  if (same) return same;
  const near = closest(key, [...known]);
  return distance(key.toLowerCase(), near.toLowerCase()) <= Math.max(2, Math.floor(key.length / 3)) ? near : undefined;
}

/** "request 2: option 'num_inference_steps' is not read by core or any loaded plugin; did you mean 'steps'? (known: ...)". */
export function unknownRequestKey(requestIndex: number, key: string, known: readonly string[]): Error {
  const hint = didYouMean(key, known);
  const why = Object.hasOwn(FOREIGN_REQUEST_NAMES, key) && hint === FOREIGN_REQUEST_NAMES[key] ? " (that is diffusers' or vLLM's name; requests are camelCase)" : '';
  return new Error(`request ${requestIndex}: option '${key}' is not read by core or any loaded plugin${hint ? `; did you mean '${hint}'?${why}` : ''} (known: ${known.join(', ')})`);
}

/**
 * Throws "<method>: unknown argument 'buckt' (did you mean 'bucket'?); it takes ..." for the first
 * key of an RPC's argument object that the method does not read: a misspelt key would be dropped.
 */
export function refuseUnknownArguments(method: string, args: object, known: readonly string[]): void {
  for (const key of Object.keys(args)) {
    if (known.includes(key)) continue;
    const near = didYouMean(key, known);
    throw new Error(`${method}: unknown argument '${key}'${near ? ` (did you mean '${near}'?)` : ''}; it takes ${known.join(', ')}; nothing applied`);
  }
}
