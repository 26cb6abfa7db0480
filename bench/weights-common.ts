// Shared by the weight-lifecycle benchmarks: inline workers, the models measured, best-of timing.
import { existsSync } from 'node:fs';
import { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import type { WorkerConfig, WorkerConfigInput } from '../core/config/schema.ts';
import type { WorkerPlugin } from '../core/plugin.ts';
import { BUILTIN_PLUGINS, EMBEDDED_MODEL_DIR } from '../index.ts';

export interface BenchModel {
  name: string;
  config: WorkerConfigInput;
}

export interface BenchOptions {
  device: 'cpu' | 'cuda';
  reps: number;
  /** Layers of the synthetic dummy model (hidden 2048: about 101 MB each). */
  layers: number;
}

/** The embedded model (the dummy when it is absent) and a synthetic one of about `layers` x 101 MB. */
export function benchModels(o: BenchOptions): { embedded: BenchModel; synthetic: BenchModel } {
  const embedded: BenchModel = existsSync(`${EMBEDDED_MODEL_DIR}/model.json`)
    ? { name: 'shapes-dit', config: { loadFormat: 'onnx', model: EMBEDDED_MODEL_DIR } }
    : { name: 'dummy (no embedded model)', config: { loadFormat: 'dummy', loadOptions: { hidden: 192, layers: 6 } } };
  const synthetic: BenchModel = {
    name: `dummy hidden 2048 x ${o.layers} layers`,
    config: { loadFormat: 'dummy', loadOptions: { hidden: 2048, layers: o.layers, textDim: 16, height: 16, width: 16, channels: 4, downscale: 2 } },
  };
  return { embedded, synthetic };
}

export async function benchWorker(o: BenchOptions, model: BenchModel, plugins: WorkerConfigInput['plugins'], extra: Record<string, WorkerPlugin> = {}): Promise<WorkerWrapperBase> {
  const registry = { ...BUILTIN_PLUGINS };
  for (const [name, f] of Object.entries(extra)) registry[name] = async () => f;
  const config = resolveConfig({ ...model.config, device: o.device, executor: 'inline', promptCacheSize: 64, plugins } as WorkerConfig);
  return WorkerWrapperBase.create(config, { registry });
}

/** Wall seconds of each of `reps` runs. */
export async function timeReps(reps: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

export { median } from './support.ts';
export const best = (xs: number[]) => Math.min(...xs);
export const round = (x: number, digits = 3) => Number(x.toPrecision(digits));
export const GB = 1e9;
export const MB = 1e6;
