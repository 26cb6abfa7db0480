// Safetensors from a request body as it arrives: the header first, then each tensor read into its
// own array in data-buffer order. The body is never held whole, so uploads of many GB work, and a
// malformed or truncated body fails before anything reaches the worker.
import type { Readable } from 'node:stream';
import { DEFAULT_MAX_HEADER_BYTES, DTYPE_ARRAY, DTYPE_BYTES, parseSafetensorsHeader, type HostTensor } from '../core/public.ts';
import { HttpError } from './http-error.ts';

export interface StreamedTensors {
  metadata: Record<string, string>;
  tensors: [string, HostTensor][];
  bytes: number;
}

/** Pulls exact byte counts out of an async chunk stream. */
class ByteReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  private readonly it: AsyncIterator<Uint8Array>;
  constructor(body: AsyncIterable<Uint8Array>) {
    this.it = body[Symbol.asyncIterator]();
  }

  /** Fills `into` completely; false when the body ended first. */
  async fill(into: Uint8Array): Promise<boolean> {
    for (let done = 0; done < into.length;) {
      if (this.at === this.chunk.length) {
        const next = await this.it.next();
        if (next.done) return false;
        this.chunk = next.value;
        this.at = 0;
        continue;
      }
      const n = Math.min(into.length - done, this.chunk.length - this.at);
      into.set(this.chunk.subarray(this.at, this.at + n), done);
      this.at += n;
      done += n;
    }
    return true;
  }

  /** Whether bytes are left past what was read. */
  async more(): Promise<boolean> {
    while (this.at === this.chunk.length) {
      const next = await this.it.next();
      if (next.done) return false;
      this.chunk = next.value;
      this.at = 0;
    }
    return true;
  }
}

const bad = (message: string): never => { throw new HttpError(400, 'body', `safetensors body: ${message}`); };

/**
 * Reads a safetensors body of `length` bytes (the request's Content-Length) tensor by tensor.
 * Each tensor lands in a fresh, aligned array that the caller owns (and may transfer).
 */
export async function readSafetensorsBody(body: Readable | AsyncIterable<Uint8Array>, length: number): Promise<StreamedTensors> {
  const reader = new ByteReader(body as AsyncIterable<Uint8Array>);
  const first8 = new Uint8Array(8);
  if (length < 8 || !(await reader.fill(first8))) bad(`${length} bytes, shorter than the 8-byte header length`);
  const n = new DataView(first8.buffer).getBigUint64(0, true);
  if (n > BigInt(DEFAULT_MAX_HEADER_BYTES)) bad(`header length ${n} exceeds the cap of ${DEFAULT_MAX_HEADER_BYTES} bytes`);
  if (8n + n > BigInt(length)) bad(`header length ${n} runs past the end of the body (${length} bytes)`);
  const header = new Uint8Array(Number(n));
  if (!(await reader.fill(header))) bad('the body ended inside the header');
  let parsed;
  try {
    parsed = parseSafetensorsHeader(header, length - 8 - Number(n));
  } catch (e) {
    return bad((e as Error).message.replace(/^safetensors: /, ''));
  }
  const tensors: [string, HostTensor][] = [];
  for (const [name, { dtype, shape, begin, end }] of parsed.infos) {
    // Unpooled and not zero-filled: every byte is written from the body just below.
    const data = new DTYPE_ARRAY[dtype](Buffer.allocUnsafeSlow(end - begin).buffer, 0, (end - begin) / DTYPE_BYTES[dtype]);
    if (!(await reader.fill(new Uint8Array(data.buffer)))) bad(`the body ended inside tensor ${JSON.stringify(name)}`);
    tensors.push([name, { dtype, shape, data }]);
  }
  if (await reader.more()) bad(`bytes past the ${length} announced by Content-Length`);
  return { metadata: parsed.metadata, tensors, bytes: length };
}
