// The streaming safetensors reader (fleet workers apply weights object-store chunk by chunk): any
// split of a file into pieces gives the in-memory parser's tensors, each in its own aligned array;
// a short, long or malformed stream is refused, never read as a smaller model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSafetensors, SafetensorsError, serializeSafetensors } from '../core/tensors/safetensors.ts';
import { SafetensorsStreamReader } from '../core/tensors/safetensors-stream.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import { arbSafetensorsFile as arbFile, cut } from './support/safetensors-files.ts';

function readAll(bytes: Uint8Array, pieces: Uint8Array[], fileBytes = bytes.length): [string, HostTensor][] {
  const reader = new SafetensorsStreamReader(fileBytes);
  const out = pieces.flatMap((p) => reader.push(p));
  reader.end();
  return out;
}

describe('SafetensorsStreamReader', () => {
  it('any split into pieces yields the parser\'s tensors, in data order, each in its own aligned array', () => {
    fc.assert(fc.property(arbFile, fc.array(fc.nat(), { maxLength: 12 }), (bytes, points) => {
      const want = parseSafetensors(bytes);
      const got = readAll(bytes, cut(bytes, points));
      expect(got.map(([n]) => n)).toEqual(want.names);
      for (const [name, t] of got) {
        expect([t.dtype, t.shape]).toEqual([want.get(name).dtype, want.get(name).shape]);
        expect(t.data).toEqual(want.get(name).data);
        expect([t.data.byteOffset, t.data.buffer.byteLength]).toEqual([0, t.data.byteLength]);
      }
    }));
  });

  it('hands a tensor out with the piece that completes it, not later', () => {
    const bytes = serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }, b: { dtype: 'F32', shape: [1], data: new Float32Array([3]) } });
    const reader = new SafetensorsStreamReader(bytes.length);
    const aEnds = bytes.length - 4;
    expect(reader.push(bytes.subarray(0, aEnds - 1))).toEqual([]);
    expect(reader.push(bytes.subarray(aEnds - 1, aEnds)).map(([n]) => n)).toEqual(['a']);
    expect(reader.push(bytes.subarray(aEnds)).map(([n, t]) => [n, [...t.data]])).toEqual([['b', [3]]]);
    reader.end();
  });

  it('a stream cut short, a stream longer than announced, and a bad header are refused naming the problem', () => {
    fc.assert(fc.property(arbFile, fc.nat(), (bytes, k) => {
      const short = k % bytes.length;
      expect(() => readAll(bytes, [bytes.subarray(0, short)])).toThrow(new SafetensorsError(`safetensors: the file ended after ${short} of ${bytes.length} bytes`));
      expect(() => readAll(bytes, [bytes, new Uint8Array(1)])).toThrow(`safetensors: more than the ${bytes.length} bytes announced arrived`);
    }));
    const bytes = serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
    // Announced one byte larger: the header's tensors no longer cover the data.
    expect(() => readAll(bytes, [bytes], bytes.length + 1)).toThrow('safetensors: 1 unused bytes at the end of the data buffer');
  });
});
