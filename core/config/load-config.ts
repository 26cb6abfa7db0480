// Reads and validates a config from a file (YAML or JSON) or an object.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { assertRegularFileSync } from '../files/regular-file.ts';
import { workerConfigSchema, type WorkerConfig, type WorkerConfigInput } from './schema.ts';
import { describeZodError } from '../validation.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseConfig(input: unknown, source = 'config', baseDir = process.cwd()): WorkerConfig {
  const result = workerConfigSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(`invalid ${source}: ${describeZodError(result.error)}`);
  return { ...result.data, baseDir };
}

export function loadConfigFile(path: string): WorkerConfig {
  let text: string;
  try {
    assertRegularFileSync(path); // readFileSync of a FIFO would block the process until a writer came
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`config ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  return parseConfig(data, `config ${path}`, dirname(resolve(path)));
}

export function resolveConfig(config: WorkerConfigInput | WorkerConfig | string | undefined): WorkerConfig {
  if (typeof config === 'string') return loadConfigFile(config);
  const baseDir = (config as WorkerConfig | undefined)?.baseDir ?? process.cwd();
  const { baseDir: _, ...rest } = (config ?? {}) as WorkerConfig;
  return parseConfig(rest, 'config', baseDir);
}
