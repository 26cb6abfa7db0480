// Builds an inline worker (same thread) on the dummy model, with extra plugins for a test.
import { WorkerWrapperBase } from '../../core/worker-wrapper/worker-wrapper-base.ts';
import { resolveConfig } from '../../core/config/load-config.ts';
import type { WorkerConfig, WorkerConfigInput } from '../../core/config/schema.ts';
import type { WorkerPlugin } from '../../core/plugin.ts';
import { BUILTIN_PLUGINS } from '../../plugins/builtin.ts';

export const SMALL_DUMMY = { height: 16, width: 16, channels: 4, downscale: 2, hidden: 32, layers: 1 };

export async function inlineWorker(config: WorkerConfigInput | WorkerConfig = {}, extra: Record<string, WorkerPlugin> = {}): Promise<WorkerWrapperBase> {
  const registry = { ...BUILTIN_PLUGINS };
  for (const [name, f] of Object.entries(extra)) registry[name] = async () => f;
  const plugins = config.plugins ?? [...Object.keys(BUILTIN_PLUGINS), ...Object.keys(extra)];
  return WorkerWrapperBase.create(
    resolveConfig({ loadFormat: 'dummy', loadOptions: SMALL_DUMMY, threads: 1, executor: 'inline', ...config, plugins } as WorkerConfig),
    { registry },
  );
}
