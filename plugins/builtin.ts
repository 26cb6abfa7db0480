// The built-in plugins by name: what a config's plugin list may name. Core imports none of
// them; the package entry hands this registry to the worker.
import { type PluginRegistry } from '../core/public.ts';

export const BUILTIN_PLUGINS: PluginRegistry = {
  'dummy-loader': async () => (await import('./dummy-loader/index.ts')).default,
  'sde-scheduler': async () => (await import('./sde-scheduler/index.ts')).default,
  'latent-capture': async () => (await import('./latent-capture/index.ts')).default,
  'custom-pipeline': async () => (await import('./custom-pipeline/index.ts')).default,
  'weight-sync': async () => (await import('./weight-sync/index.ts')).default,
  'sleep-mode': async () => (await import('./sleep-mode/index.ts')).default,
  'lora': async () => (await import('./lora/index.ts')).default,
};
