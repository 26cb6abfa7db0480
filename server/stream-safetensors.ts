// Safetensors from a request body as it arrives: each socket chunk is copied once, straight into
// the array of the tensor it belongs to (core's SafetensorsStreamReader), and finished tensors
// are handed on in groups of about `groupBytes` while the rest of the body is still on the wire.
// The body is never held whole, so uploads of many GB work.
import type { Readable } from 'node:stream';
import { SafetensorsStreamReader, type HostTensor } from '../core/public.ts';
import { HttpError } from './http-error.ts';

const bad = (message: string): never => { throw new HttpError(400, 'body', `safetensors body: ${message}`); };

/**
 * Reads a safetensors body of `length` bytes (the request's Content-Length), calling `onGroup`
 * with each group of finished tensors (at least `groupBytes`, but the last) (arrays the consumer owns and may transfer), in data order.
 * `stop` is asked after every chunk: true leaves the rest of the body unread (a consumer that
 * already refused a group). Throws a 400 naming the body for a bad header or a short body.
 */
export async function streamSafetensorsBody(
  body: Readable | AsyncIterable<Uint8Array>,
  length: number,
  groupBytes: number,
  onGroup: (group: [string, HostTensor][]) => void,
  stop: () => boolean = () => false,
): Promise<{ metadata: Record<string, string>; bytes: number }> {
  if (length < 8) bad(`${length} bytes, shorter than the 8-byte header length`);
  const reader = new SafetensorsStreamReader(length);
  let group: [string, HostTensor][] = [];
  let pending = 0;
  const flush = () => {
    if (!group.length) return;
    const out = group;
    group = [];
    pending = 0;
    onGroup(out);
  };
  // Pulled by hand, not with for-await: leaving that loop early would destroy the request (and
  // the socket the refusal is answered on).
  const chunks = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (stop()) return { metadata: reader.metadata ?? {}, bytes: length };
      const next = await chunks.next();
      if (next.done) break;
      for (const t of reader.push(next.value)) {
        group.push(t);
        pending += t[1].data.byteLength;
        if (pending >= groupBytes) flush();
      }
    }
    reader.end();
  } catch (e) {
    if (e instanceof HttpError) throw e;
    return bad((e as Error).message.replace(/^safetensors: /, ''));
  }
  flush();
  return { metadata: reader.metadata ?? {}, bytes: length };
}
