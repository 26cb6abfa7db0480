// The assembler thread: copies each chunk of a weights body into the array of the tensor it
// belongs to (core's SafetensorsStreamReader) and hands finished tensors back in groups. The copy
// into fresh tensor memory (page faults included) costs as much as receiving the bytes, so it
// runs here, beside the main thread that reads the socket (stream-safetensors.ts).
import { parentPort } from 'node:worker_threads';
import { SafetensorsStreamReader, type HostTensor } from '../core/public.ts';
import type { FromAssembler, ToAssembler } from './assembler-protocol.ts';

interface Body {
  reader: SafetensorsStreamReader;
  groupBytes: number;
  group: [string, HostTensor][];
  pending: number;
}

const port = parentPort!;
const bodies = new Map<number, Body>();
const post = (m: FromAssembler, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function flush(id: number, body: Body): void {
  if (!body.group.length) return;
  const tensors = body.group;
  body.group = [];
  body.pending = 0;
  post({ kind: 'tensors', id, tensors }, tensors.map(([, t]) => t.data.buffer as ArrayBuffer));
}

port.on('message', (m: ToAssembler) => {
  if (m.kind === 'open') {
    bodies.set(m.id, { reader: new SafetensorsStreamReader(m.length), groupBytes: m.groupBytes, group: [], pending: 0 });
    return;
  }
  const body = bodies.get(m.id);
  if (m.kind === 'drop' || !body) {
    bodies.delete(m.id);
    return;
  }
  try {
    if (m.kind === 'chunks') {
      for (const chunk of m.chunks) {
        for (const t of body.reader.push(chunk)) {
          body.group.push(t);
          body.pending += t[1].data.byteLength;
          if (body.pending >= body.groupBytes) flush(m.id, body);
        }
      }
      post({ kind: 'taken', id: m.id, bytes: m.bytes });
    } else {
      body.reader.end();
      flush(m.id, body);
      bodies.delete(m.id);
      post({ kind: 'ended', id: m.id, metadata: body.reader.metadata ?? {} });
    }
  } catch (e) {
    bodies.delete(m.id);
    post({ kind: 'failed', id: m.id, message: (e as Error).message });
  }
});
port.postMessage('ready');
