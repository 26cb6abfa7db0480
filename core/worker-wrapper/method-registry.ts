// Methods callable by name (executeMethod / collectiveRpc), each with the owner that defined it,
// so that a clash names both definitions and an unknown name lists what is there.
import type { RpcMethod } from '../plugin.ts';

export class MethodRegistry {
  private readonly methods = new Map<string, { fn: RpcMethod; owner: string }>();

  register(name: string, fn: RpcMethod, owner: string): void {
    const existing = this.methods.get(name);
    if (existing) throw new Error(`method '${name}' of ${owner} clashes with '${name}' defined by ${existing.owner}`);
    this.methods.set(name, { fn, owner });
  }

  names(): string[] {
    return [...this.methods.keys()].sort();
  }

  ownerOf(name: string): string | undefined {
    return this.methods.get(name)?.owner;
  }

  async call(name: string, args: unknown[]): Promise<unknown> {
    const m = this.methods.get(name);
    if (!m) throw new Error(`unknown method '${name}'; available: ${this.names().join(', ')}`);
    return m.fn(...args);
  }
}
