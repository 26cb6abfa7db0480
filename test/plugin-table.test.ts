// The README's plugin table says what each built-in plugin needs and declares; it is checked
// against the plugins themselves, so that the table cannot drift from the code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { BUILTIN_PLUGINS } from '../plugins/builtin.ts';
import type { WorkerWrapperBase } from '../core/worker-wrapper/worker-wrapper-base.ts';
import type { DeclarationKind } from '../core/worker-wrapper/declarations.ts';
import { inlineWorker } from './support/inline-worker.ts';

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

/** Rows of the table whose header starts with "| plugin | needs |". */
function table(): Record<string, string>[] {
  const lines = README.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| plugin | needs |'));
  const header = lines[start].split('|').slice(1, -1).map((c) => c.trim());
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    rows.push(Object.fromEntries(header.map((h, i) => [h, cells[i]])));
  }
  return rows;
}

let w: WorkerWrapperBase;
beforeAll(async () => { w = await inlineWorker(); });
afterAll(() => w.close());

describe("README's plugin table", () => {
  it('lists every built-in plugin once', () => {
    expect(table().map((r) => names(r.plugin)[0]).sort()).toEqual(Object.keys(BUILTIN_PLUGINS).sort());
  });

  it("matches each plugin's dependencies, declarations and options", async () => {
    const owned = (kind: DeclarationKind, plugin: string) => w.declarations.names(kind).filter((n) => w.declarations.ownerOf(kind, n) === `plugin '${plugin}'`).sort();
    for (const row of table()) {
      const name = names(row.plugin)[0];
      const plugin = await BUILTIN_PLUGINS[name]();
      const also = row['also declares'];
      const said = (label: RegExp) => names(also.split(';').find((part) => label.test(part)) ?? '').sort();
      const schema = plugin.optionsSchema as z.ZodObject | undefined;
      expect({
        needs: names(row.needs), requestKeys: names(row['request key']), methods: names(row.methods).sort(),
        states: said(/state/), wakeTags: said(/wake tag/), loadFormats: said(/load format/), options: names(row.options).sort(),
      }, name).toEqual({
        needs: [...(plugin.dependencies ?? [])], requestKeys: owned('requestKey', name), methods: owned('method', name),
        states: owned('state', name), wakeTags: owned('wakeTag', name), loadFormats: owned('loadFormat', name),
        options: Object.keys(schema?.shape ?? {}).sort(),
      });
    }
  });
});
