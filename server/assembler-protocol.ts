// Messages between the server's main thread and the assembler thread (assembler-entry.ts), which
// builds a weights body's tensors from its socket chunks (stream-safetensors.ts says why).
import type { HostTensor } from '../core/public.ts';

export type ToAssembler =
  /** A body of `length` bytes begins; finished tensors come back in groups of `groupBytes`. */
  | { kind: 'open'; id: number; length: number; groupBytes: number }
  /** The body's next chunks, in order (their buffers moved, not copied). */
  | { kind: 'chunks'; id: number; chunks: Uint8Array[]; bytes: number }
  /** The body has ended: check that it was whole, hand out the last group. */
  | { kind: 'end'; id: number }
  /** Forget the body (refused, cut off, or failed). */
  | { kind: 'drop'; id: number };

export type FromAssembler =
  /** Finished tensors, in data order (their buffers moved). */
  | { kind: 'tensors'; id: number; tensors: [string, HostTensor][] }
  /** `bytes` of the chunks sent have been copied into tensors (the sender's window moves on). */
  | { kind: 'taken'; id: number; bytes: number }
  | { kind: 'ended'; id: number; metadata: Record<string, string> }
  | { kind: 'failed'; id: number; message: string };
