// Other plugins' hooks.wakeUp taps, guarded: a tap that throws does not stop the taps after it,
// and is remembered (by tap name, the plugin's name) until a later wake of that plugin's tags
// succeeds (a wake of other tags proves nothing about them).
// While a plugin's wake has failed the worker is not awake: what it restores is part of serving.
import type { WorkerHooks } from '../../core/public.ts';

type WakeTap = Parameters<Parameters<WorkerHooks['wakeUp']['intercept']>[0]['register'] & {}>[0];

export class WakeFailures {
  /** Tap name -> the error of its last wake (none once it succeeds). */
  private readonly failed = new Map<string, Error>();

  /** `tagsOf(plugin)`: the wake tags that plugin declared. */
  constructor(hooks: WorkerHooks, ownTap: string, private readonly tagsOf: (plugin: string) => readonly string[]) {
    hooks.wakeUp.intercept({ register: (tap) => (tap.name === ownTap ? tap : this.guard(tap)) });
  }

  private record(name: string, error: unknown): void {
    this.failed.set(name, error instanceof Error ? error : new Error(String(error)));
  }

  /** The same tap, its failure recorded instead of thrown (tapable's three tap kinds). */
  private guard(tap: WakeTap): WakeTap {
    const fn = tap.fn as (...args: unknown[]) => unknown;
    let asked: readonly string[] = [];
    const ok = () => {
      const own = this.tagsOf(tap.name);
      if (!own.length || own.some((t) => asked.includes(t))) this.failed.delete(tap.name);
    };
    const failed = (e: unknown) => { this.record(tap.name, e); };
    if (tap.type === 'promise') {
      return { ...tap, fn: (tags: readonly string[]) => { asked = tags; return Promise.resolve().then(() => fn(tags)).then(ok, failed); } };
    }
    if (tap.type === 'async') {
      return {
        ...tap,
        fn: (tags: readonly string[], callback: (err?: unknown) => void) => {
          asked = tags;
          try {
            fn(tags, (err?: unknown) => { if (err) failed(err); else ok(); callback(); });
          } catch (e) {
            failed(e);
            callback();
          }
        },
      };
    }
    return { ...tap, fn: (tags: readonly string[]) => { asked = tags; try { fn(tags); ok(); } catch (e) { failed(e); } } };
  }

  /** Plugins whose last wake failed, with their errors. */
  get entries(): [string, Error][] {
    return [...this.failed];
  }

  has(tapName: string): boolean {
    return this.failed.has(tapName);
  }
}
