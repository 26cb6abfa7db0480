// Safetensors from a request body as it arrives. The main thread only reads the socket: its chunks
// move (transferred, not copied) to the assembler thread (assembler-entry.ts), which copies each
// once, straight into the array of the tensor it belongs to, and hands finished tensors back in
// groups of about `groupBytes` while the rest of the body is still on the wire. Receiving a chunk
// and copying it into fresh tensor memory cost about the same, so the two run side by side on two
// cores instead of one after the other on one. The body is never held whole (a window of
// MAX_IN_FLIGHT bytes at most waits for the thread), so uploads of many GB work.
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { HostTensor } from '../core/public.ts';
import type { FromAssembler, ToAssembler } from './assembler-protocol.ts';
import { HttpError } from './http-error.ts';

/**
 * Chunks go to the thread together, this many bytes at a time: a message per 64 KiB socket chunk
 * costs both threads about 10 ms per 100 MB. A body that stalls sends what it has after BATCH_MS.
 */
const BATCH_BYTES = 1 << 20;
const BATCH_MS = 2;
/** Bytes sent and not yet copied into tensors, at most: past it the socket waits (TCP back-pressure). */
const MAX_IN_FLIGHT = 16 << 20;

const bad = (message: string): never => { throw new HttpError(400, 'body', `safetensors body: ${message}`); };

type Listener = (m: FromAssembler | { kind: 'crashed'; error: Error }) => void;

export interface ReadBodyOptions {
  /** Groups of finished tensors (at least this many bytes, but the last). */
  groupBytes: number;
  /** Each group, in data order; its arrays are the consumer's (it may transfer them). */
  onGroup(group: [string, HostTensor][]): void;
  /** Asked before each chunk: true leaves the rest of the body unread (a consumer that already refused a group). */
  stop?(): boolean;
  /**
   * True when the body's chunks are nobody else's (a socket's: each owns its buffer), so they
   * move to the thread; otherwise (an injected request's payload) each is copied first.
   */
  ownChunks: boolean;
}

export class SafetensorsAssembler {
  private thread: Promise<Worker> | undefined;
  private readonly bodies = new Map<number, Listener>();
  private nextId = 1;

  /**
   * Reads a safetensors body of `length` bytes (the request's Content-Length). Throws a 400 naming
   * the body for a bad header, a short or long body, or a body cut off.
   */
  async read(body: Readable | AsyncIterable<Uint8Array>, length: number, options: ReadBodyOptions): Promise<{ metadata: Record<string, string>; bytes: number }> {
    if (length < 8) bad(`${length} bytes, shorter than the 8-byte header length`);
    const thread = await this.start();
    thread.ref(); // held open while a body is read (idle, it never holds the process)
    const id = this.nextId++;
    const post = (m: ToAssembler, transfer: ArrayBuffer[] = []) => thread.postMessage(m, transfer);
    let failed: string | undefined;
    let crashed: Error | undefined;
    let metadata: Record<string, string> | undefined;
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const news = () => new Promise<void>((resolve) => { wake = resolve; });
    this.bodies.set(id, (m) => {
      if (m.kind === 'tensors') options.onGroup(m.tensors);
      else if (m.kind === 'taken') inFlight -= m.bytes;
      else if (m.kind === 'ended') metadata = m.metadata;
      else if (m.kind === 'failed') failed = m.message;
      else crashed = m.error;
      const w = wake;
      wake = undefined;
      w?.();
    });
    const over = () => failed !== undefined || crashed !== undefined;
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    let timer: NodeJS.Timeout | undefined;
    const send = () => {
      clearTimeout(timer);
      timer = undefined;
      if (!batch.length) return;
      post({ kind: 'chunks', id, chunks: batch, bytes: batchBytes }, batch.map((c) => c.buffer as ArrayBuffer));
      inFlight += batchBytes;
      batch = [];
      batchBytes = 0;
    };
    post({ kind: 'open', id, length, groupBytes: options.groupBytes });
    // Pulled by hand, not with for-await: leaving that loop early would destroy the request (and
    // the socket the refusal is answered on).
    const chunks = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        while (inFlight > MAX_IN_FLIGHT && !over()) await news();
        if (over() || options.stop?.()) break;
        let next: IteratorResult<Uint8Array>;
        try {
          next = await chunks.next();
        } catch (e) {
          return bad((e as Error).message);
        }
        if (next.done) {
          send();
          post({ kind: 'end', id });
          while (metadata === undefined && !over()) await news();
          break;
        }
        const chunk = next.value;
        batch.push(options.ownChunks && owns(chunk) ? chunk : new Uint8Array(chunk));
        batchBytes += chunk.byteLength;
        if (batchBytes >= BATCH_BYTES) send();
        else timer ??= setTimeout(send, BATCH_MS);
      }
    } finally {
      clearTimeout(timer);
      this.bodies.delete(id);
      if (!this.bodies.size) thread.unref();
      if (metadata === undefined) post({ kind: 'drop', id });
    }
    if (crashed) throw crashed;
    if (failed !== undefined) bad(failed.replace(/^safetensors: /, ''));
    return { metadata: metadata ?? {}, bytes: length };
  }

  /** Stops the thread (a body being read fails). */
  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    if (thread) await (await thread.catch(() => undefined))?.terminate();
  }

  /** The thread, started on first use and again after a crash. */
  private start(): Promise<Worker> {
    if (this.thread) return this.thread;
    const boot = fileURLToPath(new URL('./assembler-boot.mjs', import.meta.url));
    if (!existsSync(boot)) {
      return Promise.reject(new Error(`the weights assembler thread cannot start: ${boot} is missing (a bundler that inlines omni-worker leaves it behind: keep omni-worker external)`));
    }
    const thread = new Worker(boot);
    thread.unref(); // idle: never holds the process open
    const started = new Promise<Worker>((resolve, reject) => {
      const end = (error: Error) => {
        if (this.thread === started) this.thread = undefined;
        reject(error);
        for (const listener of this.bodies.values()) listener({ kind: 'crashed', error });
      };
      thread.on('message', (m: FromAssembler | 'ready') => {
        if (m === 'ready') resolve(thread);
        else this.bodies.get(m.id)?.(m);
      });
      thread.once('error', (e) => end(new Error(`the weights assembler thread failed: ${e.message}`)));
      thread.once('exit', (code) => end(new Error(`the weights assembler thread exited (code ${code})`)));
    });
    this.thread = started;
    started.catch(() => undefined);
    return started;
  }
}

/** The chunk spans its whole, unshared buffer: moving it takes nothing else with it. */
function owns(chunk: Uint8Array): boolean {
  return chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
}
