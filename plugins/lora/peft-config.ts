// adapter_config.json (PEFT LoraConfig): what we read, and the features we refuse by name rather
// than merge wrongly. Keys PEFT writes with no effect on a merge (dropout, init, task) are ignored.
import { z } from 'zod';
import { describeZodError } from '../../core/public.ts';

const peftSchema = z.object({
  peft_type: z.string().optional(),
  r: z.number().int().positive(),
  lora_alpha: z.number().positive(),
  target_modules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]),
  use_rslora: z.boolean().default(false),
  use_dora: z.boolean().default(false),
  modules_to_save: z.array(z.string()).nullable().default(null),
  bias: z.string().default('none'),
  lora_bias: z.boolean().default(false),
  fan_in_fan_out: z.boolean().default(false),
  rank_pattern: z.record(z.string(), z.unknown()).nullable().default(null),
  alpha_pattern: z.record(z.string(), z.unknown()).nullable().default(null),
  layers_to_transform: z.unknown().nullable().default(null),
  layers_pattern: z.unknown().nullable().default(null),
  exclude_modules: z.unknown().nullable().default(null),
  target_parameters: z.array(z.string()).nullable().default(null),
}).passthrough();

export interface LoraConfig {
  r: number;
  alpha: number;
  useRslora: boolean;
  /** A list (a module matches an entry equal to its name or ending in "." + entry) or a regex (full match). */
  targetModules: readonly string[] | RegExp;
  /** The merge coefficient per unit scale: alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scaling: number;
}

const isSet = (v: unknown) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0) &&
  !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

export function parseLoraConfig(raw: unknown, where: string): LoraConfig {
  const parsed = peftSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${where}: invalid adapter_config: ${describeZodError(parsed.error)}`);
  const c = parsed.data;
  const refuse = (what: string) => { throw new Error(`${where}: ${what} is not supported (only plain LoRA on Linear layers merges here)`); };
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') refuse(`peft_type ${JSON.stringify(c.peft_type)}`);
  if (c.use_dora) refuse('DoRA (use_dora: true)');
  if (isSet(c.modules_to_save)) refuse(`modules_to_save (${JSON.stringify(c.modules_to_save)})`);
  if (c.bias !== 'none') refuse(`bias ${JSON.stringify(c.bias)} (trained biases)`);
  if (c.lora_bias) refuse('lora_bias');
  if (c.fan_in_fan_out) refuse('fan_in_fan_out (Conv1D layers)');
  if (isSet(c.rank_pattern)) refuse('rank_pattern');
  if (isSet(c.alpha_pattern)) refuse('alpha_pattern');
  if (isSet(c.layers_to_transform) || isSet(c.layers_pattern)) refuse('layers_to_transform / layers_pattern');
  if (isSet(c.exclude_modules)) refuse('exclude_modules');
  if (isSet(c.target_parameters)) refuse('target_parameters');
  if (c.target_modules === 'all-linear') refuse("target_modules 'all-linear' (list the modules)");
  let targetModules: readonly string[] | RegExp = c.target_modules as string[];
  if (typeof c.target_modules === 'string') {
    try {
      targetModules = new RegExp(`^(?:${c.target_modules})$`);
    } catch (e) {
      throw new Error(`${where}: target_modules ${JSON.stringify(c.target_modules)} is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  const scaling = c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
  return { r: c.r, alpha: c.lora_alpha, useRslora: c.use_rslora, targetModules, scaling };
}

/** PEFT's check_target_module_exists: a regex fully matches, or a list entry is the name or its suffix. */
export function targets(config: LoraConfig, module: string): boolean {
  const t = config.targetModules;
  if (t instanceof RegExp) return t.test(module);
  return t.some((k) => module === k || module.endsWith(`.${k}`));
}
