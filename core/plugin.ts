// A plugin is a small object with apply(api): it taps hooks, listens to events and registers
// RPC methods. Plugins see only this surface; core never names a plugin.
import type { DependencyContainer } from 'tsyringe';
import type { WorkerHooks } from './hooks.ts';
import type { WorkerEvents } from './events.ts';
import type { WorkerConfig } from './config/schema.ts';
import type { DiffusionWorker } from './worker/diffusion-worker.ts';

export type RpcMethod = (...args: any[]) => unknown;

export interface PluginApi {
  readonly hooks: WorkerHooks;
  readonly events: WorkerEvents;
  readonly config: WorkerConfig;
  readonly container: DependencyContainer;
  readonly worker: DiffusionWorker;
  /** Makes `fn` callable through executeMethod(name, ...); a clash with another owner is an error. */
  registerMethod(name: string, fn: RpcMethod): void;
  /** Declares a load format this plugin's loadModel tap answers (listed in errors). */
  registerLoadFormat(format: string): void;
  /** Declares a wakeUp tag this plugin restores in its hooks.wakeUp tap (beside 'weights', 'sessions'). */
  declareWakeTag(tag: string): void;
  /** Declares a request key this plugin reads (`sde`, `lora`): a request key no plugin claims is refused. */
  claimRequestKey(key: string): void;
}

export interface WorkerPlugin {
  /** Also the tap name of its hooks and the owner of its methods. */
  readonly name: string;
  apply(api: PluginApi): void | Promise<void>;
}

/** What a plugin module exports: options in, plugin out. */
export type PluginFactory = (options: Record<string, unknown>, context: { baseDir: string }) => WorkerPlugin;

/** Resolves built-in plugin names to factories; given to core from outside (core knows none). */
export type PluginRegistry = Record<string, () => Promise<PluginFactory>>;
