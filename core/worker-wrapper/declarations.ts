// What plugins declare, in one registry the worker owns (webpack keeps plugins' declarations in
// places the compiler owns): RPC methods, request keys, load formats, wakeUp tags and worker
// states. One rule for every kind: a name has one owner; declaring it again is an error naming
// both owners, and asking for an unknown name lists the known ones.
import type { RpcMethod } from '../plugin.ts';

/** What each kind of declaration carries besides its name and owner. */
export interface DeclarationValues {
  method: RpcMethod;
  requestKey: undefined;
  loadFormat: undefined;
  wakeTag: undefined;
  state: undefined;
}

export type DeclarationKind = keyof DeclarationValues;

const LABEL: Record<DeclarationKind, string> = {
  method: 'method',
  requestKey: 'request key',
  loadFormat: 'load format',
  wakeTag: 'wakeUp tag',
  state: 'worker state',
};

interface Entry<V> { readonly owner: string; readonly value: V }

/** Read access, for whoever needs to know what is declared (core's checks, plugins' listings). */
export interface DeclarationQueries {
  /** Names of one kind, in declaration order. */
  names(kind: DeclarationKind): string[];
  has(kind: DeclarationKind, name: string): boolean;
  /** "core", "plugin 'lora'", "extension X (ref)"; undefined when not declared. */
  ownerOf(kind: DeclarationKind, name: string): string | undefined;
}

export class Declarations implements DeclarationQueries {
  private readonly tables: { [K in DeclarationKind]: Map<string, Entry<DeclarationValues[K]>> } = {
    method: new Map(), requestKey: new Map(), loadFormat: new Map(), wakeTag: new Map(), state: new Map(),
  };

  declare<K extends DeclarationKind>(kind: K, name: string, owner: string, value: DeclarationValues[K]): void {
    if (typeof name !== 'string' || !name) throw new Error(`${owner} declares a ${LABEL[kind]} without a name`);
    const table = this.tables[kind];
    const existing = table.get(name);
    if (existing) throw new Error(`${LABEL[kind]} '${name}' of ${owner} clashes with '${name}' declared by ${existing.owner}`);
    table.set(name, { owner, value });
  }

  names(kind: DeclarationKind): string[] {
    return [...this.tables[kind].keys()];
  }

  has(kind: DeclarationKind, name: string): boolean {
    return this.tables[kind].has(name);
  }

  ownerOf(kind: DeclarationKind, name: string): string | undefined {
    return this.tables[kind].get(name)?.owner;
  }

  /** The declared value, or an error listing what is declared. */
  get<K extends DeclarationKind>(kind: K, name: string): DeclarationValues[K] {
    const entry = this.tables[kind].get(name);
    if (!entry) throw this.unknown(kind, name);
    return entry.value;
  }

  unknown(kind: DeclarationKind, name: string): Error {
    return new Error(`unknown ${LABEL[kind]} '${name}' (known: ${this.names(kind).join(', ') || 'none'})`);
  }
}
