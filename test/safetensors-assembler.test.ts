// The server's weights body assembler (server/stream-safetensors.ts): a body's chunks move to a
// thread that builds its tensors. Any split gives the parser's tensors in groups; a socket's
// chunks move, a caller's buffers are never taken; bodies read at once stay apart; a bad body is a
// 400 naming it; a refusal stops the read; a thread that dies fails the read in progress and the
// next read starts a new one.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors } from '../core/tensors/safetensors.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import { HttpError } from '../server/http-error.ts';
import { SafetensorsAssembler } from '../server/stream-safetensors.ts';
import { arbSafetensorsFile, cut } from './support/safetensors-files.ts';

async function* yieldAll(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

describe('SafetensorsAssembler', () => {
  const assembler = new SafetensorsAssembler();
  afterAll(() => assembler.close());
  const read = async (chunks: AsyncIterable<Uint8Array>, length: number, groupBytes: number, ownChunks: boolean, stop?: () => boolean) => {
    const groups: [string, HostTensor][][] = [];
    const done = await assembler.read(chunks, length, { groupBytes, onGroup: (g) => groups.push(g), ownChunks, stop });
    return { groups, ...done };
  };

  it('any split yields the parser\'s tensors in data order, grouped by groupBytes; chunks move only when they are the body\'s own', async () => {
    await fc.assert(fc.asyncProperty(arbSafetensorsFile, fc.array(fc.nat(), { maxLength: 12 }), fc.integer({ min: 1, max: 64 }), fc.boolean(), async (bytes, points, groupBytes, own) => {
      const want = parseSafetensors(bytes);
      const chunks = cut(bytes, points);
      const { groups, metadata, bytes: n } = await read(yieldAll(chunks), bytes.length, groupBytes, own);
      expect([metadata, n]).toEqual([want.metadata, bytes.length]);
      expect(groups.flat().map(([name]) => name)).toEqual(want.names);
      for (const [name, t] of groups.flat()) expect([t.dtype, t.shape, t.data]).toEqual([want.get(name).dtype, want.get(name).shape, want.get(name).data]);
      // Every group but the last holds at least groupBytes.
      for (const g of groups.slice(0, -1)) expect(g.reduce((s, [, t]) => s + t.data.byteLength, 0)).toBeGreaterThanOrEqual(groupBytes);
      // Moved chunks are detached here; the caller's stay whole.
      expect(chunks.every((c) => c.byteLength === 0)).toBe(own);
    }), { numRuns: 40 });
  });

  it('reads several bodies at once, each into its own tensors', async () => {
    const files = [1, 2, 3].map((k) => serializeSafetensors(Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`t${i}`, { dtype: 'F32' as const, shape: [300], data: new Float32Array(300).fill(k * 10 + i) }]))));
    async function* interleaved(bytes: Uint8Array) {
      for (const c of cut(bytes, Array.from({ length: 20 }, (_, i) => i * 250))) {
        await new Promise((r) => setImmediate(r));
        yield c;
      }
    }
    const got = await Promise.all(files.map((bytes) => read(interleaved(bytes), bytes.length, 1, true)));
    got.forEach(({ groups }, f) => {
      expect(groups.flat().map(([n, t]) => [n, t.data[0], t.data[299]])).toEqual([0, 1, 2, 3].map((i) => [`t${i}`, (f + 1) * 10 + i, (f + 1) * 10 + i]));
    });
  });

  it('refuses a short body, a long one and a bad header with a 400 naming the body', async () => {
    const bytes = serializeSafetensors({ a: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    const refusal = (chunks: Uint8Array[], length: number) => read(yieldAll(chunks), length, 1, false).then(() => undefined, (e: HttpError) => [e.status, e.field, e.message]);
    expect(await refusal([bytes.subarray(0, 20)], bytes.length)).toEqual([400, 'body', `safetensors body: the file ended after 20 of ${bytes.length} bytes`]);
    expect(await refusal([bytes, new Uint8Array(3)], bytes.length)).toEqual([400, 'body', `safetensors body: more than the ${bytes.length} bytes announced arrived`]);
    const badLength = bytes.slice();
    new DataView(badLength.buffer).setBigUint64(0, 1n << 40n, true);
    expect(await refusal([badLength], bytes.length)).toEqual([400, 'body', expect.stringMatching(/^safetensors body: .*header/)]);
    expect(await refusal([bytes.subarray(0, 4)], 4)).toEqual([400, 'body', 'safetensors body: 4 bytes, shorter than the 8-byte header length']);
    // The thread serves the next body as usual.
    expect((await read(yieldAll([bytes]), bytes.length, 1, false)).groups.flat().map(([n]) => n)).toEqual(['a']);
  });

  it('stops reading once stop() says so: the rest of the body is left unread', async () => {
    const tensors = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`t${i}`, { dtype: 'F32' as const, shape: [256], data: new Float32Array(256).fill(i) }]));
    const bytes = serializeSafetensors(tensors);
    let pulled = 0;
    async function* slow() {
      for (const c of cut(bytes, Array.from({ length: 64 }, (_, i) => i * 200))) {
        pulled++;
        await new Promise((r) => setTimeout(r, 1));
        yield c;
      }
    }
    let groups = 0;
    const chunks = cut(bytes, Array.from({ length: 64 }, (_, i) => i * 200)).length;
    await assembler.read(slow(), bytes.length, { groupBytes: 1, onGroup: () => { groups++; }, stop: () => groups > 0, ownChunks: true });
    expect(groups).toBeGreaterThan(0);
    expect(pulled).toBeLessThan(chunks);
  });

  it('fails the read in progress when the thread dies, and starts a new thread for the next', async () => {
    const own = new SafetensorsAssembler();
    const bytes = serializeSafetensors({ a: { dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) } });
    let release!: () => void;
    async function* stalled() {
      yield bytes.slice(0, 10);
      await new Promise<void>((r) => { release = r; });
      yield bytes.slice(10);
    }
    const pending = own.read(stalled(), bytes.length, { groupBytes: 1, onGroup: () => {}, ownChunks: true });
    await expect.poll(() => release, { timeout: 20_000 }).toBeDefined();
    await own.close();
    release();
    const error = await pending.then(() => undefined, (e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(HttpError); // the server's fault, not the body's: answered 500
    expect(error!.message).toMatch(/the weights assembler thread exited/);
    const groups: [string, HostTensor][][] = [];
    await own.read(yieldAll([bytes]), bytes.length, { groupBytes: 1, onGroup: (g) => groups.push(g), ownChunks: true });
    expect(groups.flat().map(([n, t]) => [n, [...t.data]])).toEqual([['a', [1, 2, 3, 4]]]);
    await own.close();
  });
});
