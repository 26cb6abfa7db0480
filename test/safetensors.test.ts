import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bf16ToFloat, floatToBf16, floatToHalf, fromFloat32, halfToFloat, toFloat32,
} from '../core/tensors/dtype-convert.ts';
import {
  openSafetensorsFile, parseSafetensors, readSafetensorsFile, readSafetensorsTensors, SafetensorsError, serializeSafetensors,
  writeSafetensorsFile, writeSafetensorsStream,
} from '../core/tensors/safetensors.ts';
import { DTYPE_ARRAY, DTYPE_BYTES, tensorBytes, type DType, type HostTensor } from '../core/tensors/tensor.ts';

const DTYPES = Object.keys(DTYPE_BYTES) as DType[];
const dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw file: header text (or JSON value), data bytes (or a byte count), optional forged header length. */
function rawFile(header: unknown, data: Uint8Array | number = 0, headerLen?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const entry = (dtype: string, shape: unknown, data_offsets: unknown) => ({ dtype, shape, data_offsets });

function tensorFromBytes(dtype: DType, shape: number[], bytes: Uint8Array): HostTensor {
  const copy = bytes.slice(); // fresh, aligned buffer
  return { dtype, shape, data: new DTYPE_ARRAY[dtype](copy.buffer, 0, bytes.length / DTYPE_BYTES[dtype]) };
}

/** Parsing may fail, but only with a SafetensorsError carrying a message; a success must yield readable tensors. */
function parseSafely(bytes: Uint8Array): void {
  try {
    const f = parseSafetensors(bytes);
    for (const name of f.names) f.get(name);
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as Error).message).toMatch(/^safetensors: \S/);
  }
}

const arbTensor: fc.Arbitrary<HostTensor> = fc
  .record({ dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }) })
  .chain(({ dtype, shape }) => {
    const bytes = shape.reduce((a, d) => a * d, DTYPE_BYTES[dtype]);
    return fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => tensorFromBytes(dtype, shape, b));
  });
const arbName = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => s !== '__metadata__');
const arbTensors = fc.uniqueArray(fc.tuple(arbName, arbTensor), { selector: ([n]) => n, maxLength: 6 }).map((e) => new Map(e));
const arbMetadata = fc.option(
  fc.uniqueArray(fc.tuple(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 16 })), { selector: ([k]) => k, maxLength: 4 })
    .map((e) => Object.fromEntries(e)),
  { nil: undefined },
);

describe('safetensors round trip', () => {
  it('parse(serialize(x)) is x, bit for bit, with every tensor an aligned view', () => {
    fc.assert(fc.property(arbTensors, arbMetadata, (tensors, metadata) => {
      const bytes = serializeSafetensors(tensors, metadata);
      expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
      const f = parseSafetensors(bytes);
      expect(f.metadata).toEqual(metadata ?? {});
      expect([...f.names].sort()).toEqual([...tensors.keys()].sort());
      for (const [name, t] of tensors) {
        const got = f.get(name);
        expect(got.dtype).toBe(t.dtype);
        expect(got.shape).toEqual(t.shape);
        expect(got.data).toBeInstanceOf(DTYPE_ARRAY[t.dtype]);
        expect(got.data.buffer).toBe(bytes.buffer);
        expect(tensorBytes(got)).toEqual(tensorBytes(t));
      }
    }), { numRuns: 300 });
  });

  it('matches the reference layout: header padded with spaces, dtypes by alignment then names', () => {
    const t = (dtype: DType, n: number): HostTensor => ({ dtype, shape: [n], data: new DTYPE_ARRAY[dtype](n) });
    const bytes = serializeSafetensors({ b: t('BOOL', 1), a: t('F32', 1), z: t('I64', 1), y: t('F64', 1), h: t('F16', 1), g: t('BF16', 1), c: t('F32', 2) }, { k: 'v' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header).toMatch(/^\{"__metadata__":\{"k":"v"\},"z":\{"dtype":"I64","shape":\[1\],"data_offsets":\[0,8\]\},"y":/);
    expect(header.trimEnd().length).toBeGreaterThan(n - 8);
    expect(header.slice(header.trimEnd().length)).toMatch(/^ *$/);
    expect(parseSafetensors(bytes).names).toEqual(['z', 'y', 'a', 'c', 'g', 'h', 'b']);
    expect(serializeSafetensors({})).toEqual(rawFile('{}      ')); // as the reference writes an empty file
  });

  it('keeps "__proto__" as an ordinary tensor name and metadata key', () => {
    const tensors = new Map([['__proto__', { dtype: 'U8' as const, shape: [1], data: Uint8Array.of(7) }]]);
    const f = parseSafetensors(serializeSafetensors(tensors, JSON.parse('{"__proto__":"x"}')));
    expect(f.names).toEqual(['__proto__']);
    expect(Object.keys(f.metadata)).toEqual(['__proto__']);
    expect(f.metadata.__proto__).toBe('x');
  });

  it('rejects tensors it cannot write', () => {
    const u8 = { dtype: 'U8' as const, shape: [2], data: new Uint8Array(2) };
    expect(() => serializeSafetensors({ __metadata__: u8 })).toThrow(/cannot be named __metadata__/);
    expect(() => serializeSafetensors({ x: { ...u8, shape: [3] } })).toThrow(/tensor "x": shape \[3\] needs 3 elements, data has 2/);
    expect(() => serializeSafetensors({ x: { ...u8, dtype: 'F16' } })).toThrow(/tensor "x": F16 data must be a Uint16Array, got Uint8Array/);
    expect(() => serializeSafetensors({ x: { ...u8, shape: [-2] } })).toThrow(/tensor "x": shape must be non-negative integers/);
    expect(() => serializeSafetensors({ x: { ...u8, dtype: 'U16' as DType } })).toThrow(/tensor "x": unknown dtype "U16"/);
    expect(() => serializeSafetensors({}, { k: 1 as unknown as string })).toThrow(/metadata value for "k" is not a string/);
  });
});

describe('safetensors validation', () => {
  const ok = { x: entry('F32', [2], [0, 8]) };
  const cases: [string, Uint8Array, RegExp][] = [
    ['file shorter than 8 bytes', new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte header length/],
    ['header length over the cap', rawFile(ok, 8, 2n ** 63n), /header length 9223372036854775808 exceeds the cap of 100000000 bytes/],
    ['header length past the end', rawFile(ok, 8, 1000n), /header length 1000 runs past the end of the file/],
    ['header not UTF-8', rawFile('{"\xff"}').map((b, i) => (i === 10 ? 0xff : b)), /header is not valid UTF-8/],
    ['header not JSON', rawFile('{"x": '), /header is not valid JSON/],
    ['header an array', rawFile([1]), /header is not a JSON object/],
    ['header null', rawFile('null'), /header is not a JSON object/],
    ['entry not an object', rawFile({ x: 3 }), /tensor "x": entry is not an object/],
    ['unknown dtype', rawFile({ x: entry('U16', [2], [0, 4]) }, 4), /tensor "x": unknown dtype "U16" \(supported: F64, F32/],
    ['missing dtype', rawFile({ x: { shape: [], data_offsets: [0, 1] } }, 1), /tensor "x": unknown dtype undefined/],
    ['negative dim', rawFile({ x: entry('U8', [-1], [0, 0]) }), /tensor "x": shape must be an array of non-negative integers, got \[-1\]/],
    ['fractional dim', rawFile({ x: entry('U8', [1.5], [0, 0]) }), /tensor "x": shape must be/],
    ['shape not an array', rawFile({ x: entry('U8', '2', [0, 2]) }, 2), /tensor "x": shape must be/],
    ['offsets reversed', rawFile({ x: entry('U8', [0], [4, 2]) }, 4), /tensor "x": data_offsets must be \[begin, end\] with 0 <= begin <= end, got \[4,2\]/],
    ['offsets of length 3', rawFile({ x: entry('U8', [2], [0, 2, 2]) }, 2), /tensor "x": data_offsets must be/],
    ['offsets missing', rawFile({ x: { dtype: 'U8', shape: [] } }, 1), /tensor "x": data_offsets must be .* got undefined/],
    ['end past the data', rawFile({ x: entry('F32', [2], [0, 8]) }, 4), /tensor "x": data_offsets end 8 is past the end of the data buffer \(4 bytes\)/],
    ['size mismatch', rawFile({ x: entry('F32', [2, 3], [0, 20]) }, 20), /tensor "x": F32\[2,3\] needs 24 bytes but data_offsets \[0, 20\] cover 20/],
    ['shape overflow', rawFile({ x: entry('F64', [2 ** 30, 2 ** 30, 2 ** 30], [0, 8]) }, 8), /tensor "x": shape .* is too large/],
    ['overlap', rawFile({ a: entry('U8', [4], [0, 4]), b: entry('U8', [4], [2, 6]) }, 6), /tensors "a" and "b" overlap/],
    ['gap', rawFile({ a: entry('U8', [2], [0, 2]), b: entry('U8', [2], [4, 6]) }, 6), /2 unused bytes before tensor "b"; the format requires the data buffer to be fully covered/],
    ['trailing bytes', rawFile({ a: entry('U8', [2], [0, 2]) }, 5), /3 unused bytes at the end of the data buffer/],
    ['non-string metadata', rawFile({ __metadata__: { k: 1 } }), /__metadata__ value for "k" is not a string/],
    ['metadata an array', rawFile({ __metadata__: ['a'] }), /__metadata__ is not an object/],
  ];
  it.each(cases)('%s', (_, bytes, message) => {
    expect(() => parseSafetensors(bytes)).toThrow(SafetensorsError);
    expect(() => parseSafetensors(bytes)).toThrow(message);
  });

  it('honours maxHeaderBytes', () => {
    const bytes = rawFile(ok, 8);
    expect(() => parseSafetensors(bytes, { maxHeaderBytes: 16 })).toThrow(/exceeds the cap of 16 bytes/);
    expect(parseSafetensors(bytes, { maxHeaderBytes: 1000 }).names).toEqual(['x']);
  });

  it('accepts scalars, empty tensors, null metadata, any header order and trailing spaces', () => {
    const header = `{"s":{"dtype":"I32","shape":[],"data_offsets":[3,7]},"e":{"dtype":"F64","shape":[0,5],"data_offsets":[3,3]},
      "b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"__metadata__":null}   `;
    const f = parseSafetensors(rawFile(header, Uint8Array.of(1, 2, 3, 42, 0, 0, 0)));
    expect(f.names).toEqual(['b', 'e', 's']);
    expect(f.metadata).toEqual({});
    expect(f.info('s')).toEqual({ dtype: 'I32', shape: [], begin: 3, end: 7 });
    expect(f.get('e').data.length).toBe(0);
    expect(f.has('s') && !f.has('t')).toBe(true);
    expect(() => f.get('t')).toThrow(/no tensor named "t"/);
    expect(() => f.info('t')).toThrow(/no tensor named "t"/);
  });

  it('get() views aligned tensors and copies misaligned ones', () => {
    const bytes = serializeSafetensors({ f: { dtype: 'F32', shape: [2], data: Float32Array.of(1.5, -2) }, u: { dtype: 'U8', shape: [1], data: Uint8Array.of(9) } });
    const view = parseSafetensors(bytes).get('f');
    expect(view.data.buffer).toBe(bytes.buffer);
    (view.data as Float32Array)[0] = 7; // a view aliases the file buffer
    expect(Array.from(parseSafetensors(bytes).get('f').data as Float32Array)).toEqual([7, -2]);

    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const f = parseSafetensors(shifted.subarray(1));
    const copy = f.get('f');
    expect(copy.data.buffer).not.toBe(shifted.buffer);
    expect(copy.data.byteOffset % 4).toBe(0);
    expect(Array.from(copy.data as Float32Array)).toEqual([7, -2]);
    expect(f.get('u').data.buffer).toBe(shifted.buffer); // 1-byte elements are always aligned
  });
});

describe('safetensors on garbage', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), parseSafely), { numRuns: 500 });
  });

  it('random bytes behind a plausible header length', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (body, k) => {
      parseSafely(rawFile(new TextDecoder().decode(body), 0, BigInt(k % (body.length + 2))));
    }), { numRuns: 500 });
  });

  it('every truncation of a valid file fails cleanly', () => {
    fc.assert(fc.property(arbTensors, arbMetadata, (tensors, metadata) => {
      const bytes = serializeSafetensors(tensors, metadata);
      for (let len = 0; len < bytes.length; len++) {
        expect(() => parseSafetensors(bytes.subarray(0, len))).toThrow(SafetensorsError);
      }
    }), { numRuns: 40 });
  });

  it('byte mutations of a valid header', () => {
    fc.assert(fc.property(arbTensors, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (tensors, edits) => {
      const bytes = serializeSafetensors(tensors).slice();
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      for (const [at, value] of edits) bytes[8 + (at % n)] = value;
      parseSafely(bytes);
    }), { numRuns: 500 });
  });

  it('structurally wrong headers', () => {
    const anyValue = fc.oneof(fc.integer({ min: -5, max: 40 }), fc.double(), fc.string({ maxLength: 4 }), fc.constant(null), fc.boolean(), fc.constant(2 ** 60));
    const arbEntry = fc.record({
      dtype: fc.oneof(fc.constantFrom(...DTYPES), anyValue),
      shape: fc.oneof(fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }), fc.array(anyValue, { maxLength: 3 }), anyValue),
      data_offsets: fc.oneof(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 })), fc.array(anyValue, { maxLength: 3 }), anyValue),
    }, { requiredKeys: [] });
    const arbHeader = fc.dictionary(fc.constantFrom('a', 'b', 'c', '__metadata__'), fc.oneof(arbEntry, fc.dictionary(fc.string(), fc.oneof(fc.string(), anyValue))));
    fc.assert(fc.property(arbHeader, fc.integer({ min: 0, max: 48 }), (header, dataLen) => parseSafely(rawFile(header, dataLen))), { numRuns: 2000 });
  });
});

describe('safetensors files', () => {
  const tensors = { w: { dtype: 'BF16' as const, shape: [2, 2], data: Uint16Array.of(1, 2, 3, 4) }, i: { dtype: 'I64' as const, shape: [1], data: BigInt64Array.of(-5n) } };

  it('writes atomically and reads back, whole or tensor by tensor', async () => {
    const path = join(dir, 'a.safetensors');
    writeFileSync(path, 'old contents');
    await writeSafetensorsFile(path, tensors, { note: 'hi' });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const f = await readSafetensorsFile(path);
    expect(f.metadata).toEqual({ note: 'hi' });
    expect(Array.from(f.get('w').data as Uint16Array)).toEqual([1, 2, 3, 4]);

    const h = await openSafetensorsFile(path);
    try {
      expect(h.names).toEqual(['i', 'w']);
      expect(await h.read('i')).toEqual({ dtype: 'I64', shape: [1], data: BigInt64Array.of(-5n) });
      expect(await h.read('w')).toEqual(f.get('w'));
      await expect(h.read('nope')).rejects.toThrow(/no tensor named "nope"/);
    } finally {
      await h.close();
    }
  });

  it('reports malformed files', async () => {
    const path = join(dir, 'bad.safetensors');
    const good = serializeSafetensors(tensors);
    writeFileSync(path, good.subarray(0, good.length - 1));
    await expect(readSafetensorsFile(path)).rejects.toThrow(/past the end of the data buffer/);
    await expect(openSafetensorsFile(path)).rejects.toThrow(/past the end of the data buffer/);
    writeFileSync(path, 'abc');
    await expect(openSafetensorsFile(path)).rejects.toThrow(/file is 3 bytes/);
  });
});

describe('files of any size', () => {
  it('reads each tensor into its own buffer of exactly its size, never a whole-file buffer', async () => {
    const path = join(dir, 'per-tensor.safetensors');
    const tensors = {
      a: { dtype: 'F32' as const, shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i / 7) },
      b: { dtype: 'F16' as const, shape: [7], data: Uint16Array.from({ length: 7 }, (_, i) => 0x3c00 + i) },
      c: { dtype: 'I64' as const, shape: [2], data: BigInt64Array.of(-1n, 2n ** 40n) },
    };
    await writeSafetensorsFile(path, tensors, { kind: 'test' });
    const { metadata, tensors: read } = await readSafetensorsTensors(path);
    expect(metadata).toEqual({ kind: 'test' });
    expect(read.map(([n]) => n)).toEqual(['c', 'a', 'b']); // data-buffer order
    for (const [name, t] of read) {
      expect(t).toEqual(tensors[name as keyof typeof tensors]);
      expect(t.data.buffer.byteLength).toBe(t.data.byteLength); // its own buffer, not a view into the file
    }
  });

  it('reads large tensors in pieces, several at once, reporting each element range exactly once', async () => {
    const path = join(dir, 'pieces.safetensors');
    const n = (9 << 20) / 4 + 3; // three 4 MiB pieces, the last one short
    const tensors = {
      big: { dtype: 'F32' as const, shape: [n], data: Float32Array.from({ length: n }, (_, i) => i) },
      small: { dtype: 'BF16' as const, shape: [3], data: Uint16Array.of(1, 2, 3) },
      empty: { dtype: 'F32' as const, shape: [0], data: new Float32Array(0) },
    };
    await writeSafetensorsFile(path, tensors);
    const seen = new Map<string, [number, number][]>();
    const given = new Map<string, HostTensor>();
    const { tensors: read } = await readSafetensorsTensors(path, {
      onRead: (name, t, start, end) => { seen.set(name, [...(seen.get(name) ?? []), [start, end]]); given.set(name, t); },
    });
    for (const [name, t] of read) expect(t).toEqual(tensors[name as keyof typeof tensors]);
    expect(given.get('big')).toBe(Object.fromEntries(read).big); // the tensor returned, not a copy
    const ranges = (name: string) => (seen.get(name) ?? []).sort((x, y) => x[0] - y[0]);
    expect(ranges('big')).toEqual([[0, 1 << 20], [1 << 20, 2 << 20], [2 << 20, n]]);
    expect(ranges('small')).toEqual([[0, 3]]);
    expect(ranges('empty')).toEqual([]); // no bytes, nothing to check
  });

  it('stops reading and closes the file when onRead throws', async () => {
    const path = join(dir, 'onread-throws.safetensors');
    await writeSafetensorsFile(path, { x: { dtype: 'F32', shape: [2], data: Float32Array.of(3, 4) } });
    const fh = await open(path, 'r');
    await expect(readSafetensorsTensors(fh, { onRead: () => { throw new Error('refused'); } })).rejects.toThrow('refused');
    await expect(fh.stat()).rejects.toThrow(/closed|EBADF/);
  });

  it('reads from a handle opened elsewhere (a path allowlist) and closes it', async () => {
    const path = join(dir, 'by-handle.safetensors');
    await writeSafetensorsFile(path, { x: { dtype: 'F32', shape: [2], data: Float32Array.of(3, 4) } });
    const fh = await open(path, 'r');
    const { tensors } = await readSafetensorsTensors(fh);
    expect(tensors).toEqual([['x', { dtype: 'F32', shape: [2], data: Float32Array.of(3, 4) }]]);
    await expect(fh.stat()).rejects.toThrow(/closed|EBADF/);
  });

  it('opens a file whose logical size is over 2 GiB (sparse) and reads a tensor by its offset', async () => {
    const path = join(dir, 'sparse.safetensors');
    const big = 2 ** 31 + 2 ** 20; // bytes that exist only logically
    writeFileSync(path, rawFile({ small: entry('F32', [2], [0, 8]), big: entry('U8', [big], [8, 8 + big]) }, new Uint8Array(Float32Array.of(1.5, -2).buffer)));
    truncateSync(path, readFileSync(path).length + big); // a hole: no disk used
    await expect(readFile(path)).rejects.toThrow(/greater than 2 GiB/); // what the whole-file path meets
    const h = await openSafetensorsFile(path);
    try {
      expect(h.info('big').end - h.info('big').begin).toBe(big);
      expect(Array.from((await h.read('small')).data as Float32Array)).toEqual([1.5, -2]);
    } finally {
      await h.close();
    }
  });

  it('streams tensors to a file one at a time, in the same layout as the whole-buffer writer', async () => {
    const tensors = new Map<string, HostTensor>([
      ['w', { dtype: 'BF16', shape: [2, 3], data: Uint16Array.of(1, 2, 3, 4, 5, 6) }],
      ['b', { dtype: 'F32', shape: [3], data: Float32Array.of(0.5, -1, 2) }],
      ['n', { dtype: 'I64', shape: [], data: BigInt64Array.of(9n) }],
    ]);
    const path = join(dir, 'streamed.safetensors');
    const asked: string[] = [];
    await writeSafetensorsStream(path, [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), (spec) => {
      asked.push(spec.name);
      return tensors.get(spec.name)!;
    }, { a: 'b' });
    expect(asked).toEqual(['n', 'b', 'w']); // file order, each asked once
    expect(new Uint8Array(readFileSync(path))).toEqual(serializeSafetensors(tensors, { a: 'b' }));
  });

  it('refuses a produced tensor that does not match its spec, leaving no file behind', async () => {
    const path = join(dir, 'streamed-bad.safetensors');
    const spec = { name: 'x', dtype: 'F32' as const, shape: [4] };
    await expect(writeSafetensorsStream(path, [spec], () => ({ dtype: 'F32', shape: [4], data: new Float32Array(3) })))
      .rejects.toThrow(/tensor "x": shape \[4\] needs 4 elements, data has 3/);
    await expect(writeSafetensorsStream(path, [spec], () => ({ dtype: 'F16', shape: [4], data: new Uint16Array(4) })))
      .rejects.toThrow(/tensor "x": declared F32, produced F16/);
    await expect(writeSafetensorsStream(path, [spec, spec], () => ({ dtype: 'F32', shape: [4], data: new Float32Array(4) })))
      .rejects.toThrow(/tensor "x" is named twice/);
    expect(readdirSync(dir).filter((f) => f.startsWith('streamed-bad'))).toEqual([]);
  });
});

const hasPythonSafetensors = spawnSync('python3', ['-c', 'import safetensors, numpy'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasPythonSafetensors)('safetensors interop with Python', () => {
  it('Python reads our files and we read Python\'s, byte-identical layouts', () => {
    const ours = join(dir, 'ours.safetensors');
    const theirs = join(dir, 'theirs.safetensors');
    writeFileSync(ours, serializeSafetensors({
      x: { dtype: 'F32', shape: [2, 3], data: Float32Array.of(0, 1, 2, 3, 4, 5) },
      h: { dtype: 'F16', shape: [2], data: Uint16Array.of(0x3c00, 0xc000) },
      i: { dtype: 'I64', shape: [2], data: BigInt64Array.of(1n, -2n) },
      b: { dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
    }, { framework: 'pt' }));
    const script = `
import sys, numpy as np
from safetensors.numpy import load_file, save, save_file
from safetensors import safe_open
t = load_file(sys.argv[1])
assert t['x'].dtype == np.float32 and t['x'].tolist() == [[0, 1, 2], [3, 4, 5]], t
assert t['h'].tolist() == [1.0, -2.0] and t['i'].tolist() == [1, -2] and t['b'].tolist() == [True, False, True], t
assert safe_open(sys.argv[1], 'np').metadata() == {'framework': 'pt'}
assert save(t, metadata={'framework': 'pt'}) == open(sys.argv[1], 'rb').read(), 'layout differs'
save_file({'u': np.arange(3, dtype=np.uint8), 'd': np.array([0.5, -1.25])}, sys.argv[2], metadata={'from': 'python'})
`;
    const run = spawnSync('python3', ['-c', script, ours, theirs], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const f = parseSafetensors(readFileSync(theirs));
    expect(f.metadata).toEqual({ from: 'python' });
    expect(Array.from(f.get('u').data as Uint8Array)).toEqual([0, 1, 2]);
    expect(Array.from(f.get('d').data as Float64Array)).toEqual([0.5, -1.25]);
  });
});

// Independent reference: round to nearest even in float64, where the scaled value is exact.
function refRound(bits: number, mantBits: number, minExp: number, maxFinite: number): number {
  const x = new Float32Array(new Uint32Array([bits]).buffer)[0];
  if (!Number.isFinite(x) || x === 0) return x;
  const exp = Math.max(((bits >>> 23) & 0xff) - 127, minExp);
  const q = 2 ** (exp - mantBits);
  const v = Math.abs(x) / q;
  const fl = Math.floor(v);
  const r = (v - fl > 0.5 || (v - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl) * q;
  return Math.sign(x) * (r > maxFinite ? Infinity : r);
}

describe('float16 / bfloat16 conversion', () => {
  it('encodes known float16 values', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [0, 0], [-0, 0x8000], [2 ** -14, 0x0400], [2 ** -24, 0x0001],
      [1023 * 2 ** -24, 0x03ff], [2 ** -25, 0], [2 ** -25 * 1.01, 0x0001], [1.5 * 2 ** -24, 0x0002],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66], [-65504, 0xfbff],
    ];
    for (const [x, h] of cases) expect([x, floatToHalf(x)]).toEqual([x, h]);
    const nan = floatToHalf(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('decodes known float16 values', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
  });

  it('encodes and decodes known bfloat16 values', () => {
    const cases: [number, number][] = [
      [1, 0x3f80], [-2, 0xc000], [Infinity, 0x7f80], [-Infinity, 0xff80], [-0, 0x8000], [1 + 2 ** -8, 0x3f80],
      [1 + 3 * 2 ** -8, 0x3f82], [3.3895313892515355e38, 0x7f7f], [3.4e38, 0x7f80], [2 ** -133, 0x0001], [2 ** -126, 0x0080],
    ];
    for (const [x, h] of cases) {
      expect([x, floatToBf16(x)]).toEqual([x, h]);
      if (x !== 1 + 2 ** -8 && x !== 1 + 3 * 2 ** -8 && x !== 3.4e38) expect(bf16ToFloat(h)).toBe(x);
    }
    expect(floatToBf16(NaN) & 0x7f).not.toBe(0);
    expect(bf16ToFloat(0x7fc0)).toBeNaN();
  });

  it('every 16-bit pattern survives widening and narrowing, NaN payloads included', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    for (const dtype of ['F16', 'BF16'] as const) {
      const wide = toFloat32({ dtype, shape: [65536], data: all });
      expect(fromFloat32(wide, dtype)).toEqual(all);
    }
  });

  it('narrowing rounds to nearest even, like an independent float64 reference', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { minLength: 1, maxLength: 64 }), (words) => {
      const bits = Uint32Array.from(words);
      const x = new Float32Array(bits.buffer);
      const half = toFloat32({ dtype: 'F16', shape: [x.length], data: fromFloat32(x, 'F16') });
      const bf = toFloat32({ dtype: 'BF16', shape: [x.length], data: fromFloat32(x, 'BF16') });
      for (let i = 0; i < x.length; i++) {
        if (Number.isNaN(x[i])) {
          expect(half[i]).toBeNaN();
          expect(bf[i]).toBeNaN();
          continue;
        }
        expect(half[i]).toBe(refRound(bits[i], 10, -14, 65504));
        expect(bf[i]).toBe(refRound(bits[i], 7, -126, 3.3895313892515355e38));
      }
    }), { numRuns: 2000 });
  });

  it('toFloat32 and fromFloat32 on the other dtypes', () => {
    const f = Float32Array.of(1.5, -3);
    expect(toFloat32({ dtype: 'F32', shape: [2], data: f })).toBe(f);
    expect(Array.from(toFloat32({ dtype: 'F64', shape: [1], data: Float64Array.of(0.1) }))).toEqual([Math.fround(0.1)]);
    expect(Array.from(toFloat32({ dtype: 'I64', shape: [2], data: BigInt64Array.of(-7n, 1n << 40n) }))).toEqual([-7, 2 ** 40]);
    expect(Array.from(toFloat32({ dtype: 'I8', shape: [1], data: Int8Array.of(-4) }))).toEqual([-4]);
    const copy = fromFloat32(f, 'F32');
    expect(copy).toEqual(f);
    expect(copy).not.toBe(f);
    expect(fromFloat32(f, 'F64')).toEqual(Float64Array.of(1.5, -3));
    expect(() => fromFloat32(f, 'I32' as 'F32')).toThrow(/I32 is not a float dtype/);
  });
});
