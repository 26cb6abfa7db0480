// A safetensors file that arrives in pieces of any size (object store chunks, a socket): each
// tensor is copied once, from the pieces into its own aligned array, and handed out as soon as
// its last byte arrives, so a consumer stages tensors while the rest is still on the wire and
// the whole file is never held (nor concatenated) in one buffer. Validation is the in-memory
// parser's (parseSafetensorsHeader): the header must describe exactly `fileBytes` bytes.
import { assertLittleEndian, headerLength, parseSafetensorsHeader, SafetensorsError, type SafetensorsOptions, type SafetensorsTensorInfo } from './safetensors.ts';
import { uninitializedArray, type HostTensor } from './tensor.ts';

export class SafetensorsStreamReader {
  /** Header metadata, once the header has arrived. */
  metadata: Record<string, string> | undefined;
  private received = 0;
  /** The bytes being filled: the 8-byte length, the header, then each tensor in data order. */
  private target: Uint8Array = new Uint8Array(8);
  private filled = 0;
  private stage: 'length' | 'header' | 'data' = 'length';
  private tensors: [string, SafetensorsTensorInfo][] = [];
  private next = 0;
  private current: HostTensor | undefined;

  constructor(readonly fileBytes: number, private readonly options: SafetensorsOptions = {}) {
    assertLittleEndian();
  }

  /** Takes the next piece; returns the tensors it completed, in data-buffer order. */
  push(piece: Uint8Array): [string, HostTensor][] {
    if (this.received + piece.byteLength > this.fileBytes) {
      throw new SafetensorsError(`safetensors: more than the ${this.fileBytes} bytes announced arrived`);
    }
    this.received += piece.byteLength;
    const done: [string, HostTensor][] = [];
    let at = 0;
    for (;;) {
      if (this.finished) return done;
      const n = Math.min(piece.byteLength - at, this.target.byteLength - this.filled);
      this.target.set(piece.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled < this.target.byteLength) return done;
      this.advance(done);
    }
  }

  /** Checks that the whole file arrived (the header's tensors, every byte). */
  end(): void {
    if (this.received < this.fileBytes || !this.finished) {
      throw new SafetensorsError(`safetensors: the file ended after ${this.received} of ${this.fileBytes} bytes`);
    }
  }

  private get finished(): boolean {
    return this.stage === 'data' && this.next > this.tensors.length;
  }

  /** The current target is full: act on it and point at the next one. */
  private advance(done: [string, HostTensor][]): void {
    if (this.stage === 'length') {
      const n = headerLength(this.target, this.fileBytes, this.options);
      this.stage = 'header';
      this.target = new Uint8Array(n);
      this.filled = 0;
      return;
    }
    if (this.stage === 'header') {
      const { metadata, infos } = parseSafetensorsHeader(this.target, this.fileBytes - 8 - this.target.byteLength);
      this.metadata = metadata;
      this.tensors = [...infos];
      this.stage = 'data';
    } else {
      done.push([this.tensors[this.next - 1][0], this.current!]);
    }
    this.openNext();
  }

  /** The next tensor's own array as the target; past the last one, an empty target. */
  private openNext(): void {
    const entry = this.tensors[this.next++];
    this.filled = 0;
    if (!entry) {
      this.target = new Uint8Array(0);
      this.current = undefined;
      return;
    }
    const { dtype, shape, begin, end } = entry[1];
    const data = uninitializedArray(dtype, end - begin); // every byte is written from the pieces
    this.current = { dtype, shape, data };
    this.target = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
}
