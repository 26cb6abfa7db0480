// safetensors reader and writer (https://github.com/huggingface/safetensors), validating as strictly
// as the reference implementation: every byte of the data buffer belongs to exactly one tensor.
// Layout: u64 LE header length N | N bytes of UTF-8 JSON header | data buffer.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { DTYPE_ARRAY, DTYPE_BYTES, numel, tensorBytes, uninitializedArray, type DType, type HostTensor } from './tensor.ts';
import { openRegularFile } from '../files/regular-file.ts';

export { fromFloat32, toFloat32 } from './dtype-convert.ts'; // weight loaders widen F16/BF16 through these

export const DEFAULT_MAX_HEADER_BYTES = 100_000_000; // the reference implementation's cap

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export interface SafetensorsOptions {
  /** Largest header accepted, in bytes (default 100 MB). */
  maxHeaderBytes?: number;
}

/** Where a tensor lives: begin/end are byte offsets relative to the start of the data buffer. */
export interface SafetensorsTensorInfo {
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

interface Index {
  readonly metadata: Record<string, string>;
  /** Tensor names in data-buffer order. */
  readonly names: readonly string[];
  has(name: string): boolean;
  info(name: string): SafetensorsTensorInfo;
}

export interface SafetensorsFile extends Index {
  /**
   * The tensor. Its data is a view aliasing the parsed bytes (no copy) when the tensor's absolute
   * byte offset is a multiple of its element size, which holds for files written with 8-byte
   * alignment (this writer, the reference writers) held in an aligned buffer; otherwise a copy.
   * Writing into a view writes into the file buffer.
   */
  get(name: string): HostTensor;
}

export interface SafetensorsHandle extends Index {
  /** Reads one tensor from disk into a fresh, aligned array. */
  read(name: string): Promise<HostTensor>;
  /** Reads `into.length` bytes of a tensor, from byte `offset` of it, into `into`. */
  readInto(name: string, into: Uint8Array, offset: number): Promise<void>;
  close(): Promise<void>;
}

function fail(message: string): never {
  throw new SafetensorsError(`safetensors: ${message}`);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
export const assertLittleEndian = (): true | never => LITTLE_ENDIAN || fail('this host is big-endian; the format is little-endian');

/** The header length N from the first 8 bytes, checked against the cap and the file size. */
export function headerLength(first8: Uint8Array, fileBytes: number, opts: SafetensorsOptions): number {
  if (fileBytes < 8) fail(`file is ${fileBytes} bytes, shorter than the 8-byte header length`);
  const max = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(max)) fail(`header length ${n} exceeds the cap of ${max} bytes`);
  if (8n + n > BigInt(fileBytes)) fail(`header length ${n} runs past the end of the file (${fileBytes} bytes)`);
  return Number(n);
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v)?.slice(0, 80) ?? String(v);

function parseEntry(name: string, raw: unknown, dataBytes: number): SafetensorsTensorInfo {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!isObject(raw)) return fail(`${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    fail(`${where}: unknown dtype ${show(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    fail(`${where}: shape must be an array of non-negative integers, got ${show(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    fail(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${show(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataBytes) fail(`${where}: data_offsets end ${end} is past the end of the data buffer (${dataBytes} bytes)`);
  const size = DTYPE_BYTES[dtype as DType];
  const bytes = (shape as number[]).reduce((acc, d) => acc * d, size);
  if (!Number.isSafeInteger(bytes)) fail(`${where}: shape ${show(shape)} is too large`);
  if (bytes !== end - begin) {
    fail(`${where}: ${dtype}${show(shape)} needs ${bytes} bytes but data_offsets [${begin}, ${end}] cover ${end - begin}`);
  }
  return { dtype: dtype as DType, shape: [...(shape as number[])], begin, end };
}

/**
 * Parses and validates the JSON header against a data buffer of `dataBytes` bytes; for readers
 * that receive the data as a stream (tensors in data-buffer order, then read one by one).
 */
export function parseSafetensorsHeader(header: Uint8Array, dataBytes: number): { metadata: Record<string, string>; infos: Map<string, SafetensorsTensorInfo> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(header);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) return fail('header is not a JSON object');

  let metadata: Record<string, string> = {};
  const infos = new Map<string, SafetensorsTensorInfo>();
  for (const [name, raw] of Object.entries(json)) {
    if (name !== '__metadata__') {
      infos.set(name, parseEntry(name, raw, dataBytes));
    } else if (raw !== null) {
      if (!isObject(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') fail(`__metadata__ value for ${JSON.stringify(k)} is not a string`);
      }
      metadata = Object.fromEntries(Object.entries(raw)) as Record<string, string>; // own keys, even "__proto__"
    }
  }

  // Tensors must tile the data buffer exactly: no overlaps, no gaps, nothing left over.
  const sorted = [...infos].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = '';
  for (const [name, { begin, end }] of sorted) {
    if (begin < cursor) fail(`tensors ${JSON.stringify(prev)} and ${JSON.stringify(name)} overlap`);
    if (begin > cursor) {
      fail(`${begin - cursor} unused bytes before tensor ${JSON.stringify(name)}; the format requires the data buffer to be fully covered`);
    }
    cursor = end;
    prev = name;
  }
  if (cursor !== dataBytes) {
    fail(`${dataBytes - cursor} unused bytes at the end of the data buffer; the format requires the data buffer to be fully covered`);
  }
  return { metadata, infos: new Map(sorted) };
}

function makeIndex(metadata: Record<string, string>, infos: Map<string, SafetensorsTensorInfo>): Index {
  const lookup = (name: string): SafetensorsTensorInfo => infos.get(name) ?? fail(`no tensor named ${JSON.stringify(name)}`);
  return {
    metadata,
    names: [...infos.keys()],
    has: (name) => infos.has(name),
    info: (name) => {
      const i = lookup(name);
      return { ...i, shape: [...i.shape] };
    },
  };
}

/** Parses a whole safetensors file held in memory. Tensors are decoded lazily by `get`. */
export function parseSafetensors(bytes: Uint8Array, opts: SafetensorsOptions = {}): SafetensorsFile {
  assertLittleEndian();
  const n = headerLength(bytes, bytes.length, opts);
  const dataStart = 8 + n;
  const { metadata, infos } = parseSafetensorsHeader(bytes.subarray(8, dataStart), bytes.length - dataStart);
  const index = makeIndex(metadata, infos);
  return {
    ...index,
    get(name) {
      const { dtype, shape, begin, end } = index.info(name);
      const Ctor = DTYPE_ARRAY[dtype];
      const count = (end - begin) / Ctor.BYTES_PER_ELEMENT;
      const at = bytes.byteOffset + dataStart + begin;
      if (at % Ctor.BYTES_PER_ELEMENT === 0) return { dtype, shape, data: new Ctor(bytes.buffer, at, count) };
      const data = new Ctor(count);
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
      return { dtype, shape, data };
    },
  };
}

const CHUNK = 1 << 30; // one read() call moves at most 2 GiB

async function readFully(fh: FileHandle, into: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < into.length;) {
    const { bytesRead } = await fh.read(into, done, Math.min(CHUNK, into.length - done), position + done);
    if (bytesRead === 0) fail(`file ended ${into.length - done} bytes early`);
    done += bytesRead;
  }
}

/** Reads a whole file into memory and parses it; `get` then returns views into that buffer. */
export async function readSafetensorsFile(path: string, opts: SafetensorsOptions = {}): Promise<SafetensorsFile> {
  const fh = await openRegularFile(path);
  try {
    const size = (await fh.stat()).size;
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(size);
    } catch {
      return fail(`${path} (${size} bytes) does not fit in one buffer; use openSafetensorsFile`);
    }
    await readFully(fh, bytes, 0);
    return parseSafetensors(bytes, opts);
  } finally {
    await fh.close();
  }
}

/**
 * Opens a file reading only its header; tensors are read one by one (for files too big to hold).
 * `file` is a path, or a handle already opened (by a path allowlist, say), closed by `close()`.
 */
export async function openSafetensorsFile(file: string | FileHandle, opts: SafetensorsOptions = {}): Promise<SafetensorsHandle> {
  assertLittleEndian();
  const fh = typeof file === 'string' ? await openRegularFile(file) : file;
  try {
    const size = (await fh.stat()).size;
    const first8 = new Uint8Array(Math.min(8, size));
    await readFully(fh, first8, 0);
    const n = headerLength(first8, size, opts);
    const header = new Uint8Array(n);
    await readFully(fh, header, 8);
    const { metadata, infos } = parseSafetensorsHeader(header, size - 8 - n);
    const index = makeIndex(metadata, infos);
    return {
      ...index,
      async read(name) {
        const { dtype, shape, begin, end } = index.info(name);
        const data = uninitializedArray(dtype, end - begin); // every byte is read below
        await readFully(fh, new Uint8Array(data.buffer), 8 + n + begin);
        return { dtype, shape, data };
      },
      async readInto(name, into, offset) {
        const { begin, end } = index.info(name);
        if (offset < 0 || offset + into.length > end - begin) fail(`bytes ${offset}..${offset + into.length} are outside tensor ${JSON.stringify(name)} (${end - begin} bytes)`);
        await readFully(fh, into, 8 + n + begin + offset);
      },
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export interface ReadTensorsOptions extends SafetensorsOptions {
  /**
   * Called for each piece read, with the elements [start, end) of `tensor` it filled, while later
   * pieces are still being read: work on the bytes here (a check) overlaps the rest of the reads.
   */
  onRead?: (name: string, tensor: HostTensor, start: number, end: number) => void;
}

/** Bytes one read() asks for, and reads queued at once: libuv's 4 pool threads stay busy while the
 * caller's onRead works on a piece. */
const PIECE_BYTES = 4 << 20;
const READS_IN_FLIGHT = 8;

/**
 * Reads every tensor of a file, each into its own buffer: peak memory is the tensors' bytes, never
 * a whole-file buffer, so files over Node's 2 GiB readFile limit load too. The data is read in
 * pieces of at most 4 MiB, several at once: the copies out of the page cache (and the page faults
 * of fresh memory) run on the thread pool, beside the caller's work. Tensors in data-buffer order.
 */
export async function readSafetensorsTensors(file: string | FileHandle, opts: ReadTensorsOptions = {}): Promise<{ metadata: Record<string, string>; tensors: [string, HostTensor][] }> {
  const handle = await openSafetensorsFile(file, opts);
  try {
    const tensors = handle.names.map((name): [string, HostTensor] => {
      const { dtype, shape, begin, end } = handle.info(name);
      return [name, { dtype, shape, data: uninitializedArray(dtype, end - begin) }]; // every byte is read below
    });
    const pieces: { index: number; at: number; bytes: Uint8Array }[] = [];
    tensors.forEach(([, t], index) => {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (let at = 0; at < bytes.length; at += PIECE_BYTES) pieces.push({ index, at, bytes: bytes.subarray(at, at + PIECE_BYTES) });
    });
    let next = 0;
    let failed: unknown;
    const reader = async () => {
      while (failed === undefined && next < pieces.length) {
        const { index, at, bytes } = pieces[next++];
        const [name, t] = tensors[index];
        try {
          await handle.readInto(name, bytes, at);
          opts.onRead?.(name, t, at / DTYPE_BYTES[t.dtype], (at + bytes.length) / DTYPE_BYTES[t.dtype]);
        } catch (e) {
          failed ??= e; // the other readers stop; the file closes once none is mid-read
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: READS_IN_FLIGHT }, reader));
    if (failed !== undefined) throw failed;
    return { metadata: handle.metadata, tensors };
  } finally {
    await handle.close();
  }
}

// The reference writer's order: dtypes by descending alignment (its Dtype enum order), then name.
// With the data start 8-byte aligned, every tensor then starts at a multiple of its element size.
const DTYPE_RANK: Record<DType, number> = { BOOL: 0, U8: 1, I8: 2, I16: 3, F16: 4, BF16: 5, I32: 6, F32: 7, F64: 8, I64: 9 };

/** A tensor to be written: its name, dtype and shape (the data may come later). */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

interface Layout {
  /** Length prefix, JSON header and its space padding. */
  head: Uint8Array;
  /** Specs in file order. */
  order: TensorSpec[];
  dataBytes: number;
}

/** Validates specs and metadata, orders the tensors and builds the header (padded to 8 bytes). */
function planLayout(specs: readonly TensorSpec[], metadata?: Record<string, string>): Layout {
  assertLittleEndian();
  const seen = new Set<string>();
  for (const { name, dtype, shape } of specs) {
    const where = `tensor ${JSON.stringify(name)}`;
    if (name === '__metadata__') fail(`a tensor cannot be named __metadata__`);
    if (seen.has(name)) fail(`${where} is named twice`);
    seen.add(name);
    if (!Object.hasOwn(DTYPE_BYTES, dtype)) fail(`${where}: unknown dtype ${show(dtype)}`);
    if (!shape.every(isCount)) fail(`${where}: shape must be non-negative integers, got ${show(shape)}`);
  }
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (typeof v !== 'string') fail(`metadata value for ${JSON.stringify(k)} is not a string`);
  }
  const order = [...specs].sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Built by hand so that key order is ours and a name like "__proto__" stays an ordinary key.
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  let offset = 0;
  for (const { name, dtype, shape } of order) {
    const end = offset + numel(shape) * DTYPE_BYTES[dtype];
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerBytes = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + headerBytes).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerBytes), true);
  head.set(json, 8);
  return { head, order, dataBytes: offset };
}

function checkData(spec: TensorSpec, t: HostTensor): void {
  const where = `tensor ${JSON.stringify(spec.name)}`;
  const Ctor = DTYPE_ARRAY[spec.dtype];
  if (t.dtype !== spec.dtype) fail(`${where}: declared ${spec.dtype}, produced ${t.dtype}`);
  if (!(t.data instanceof Ctor)) fail(`${where}: ${spec.dtype} data must be a ${Ctor.name}, got ${t.data.constructor.name}`);
  if (t.data.length !== numel(spec.shape)) fail(`${where}: shape ${show(spec.shape)} needs ${numel(spec.shape)} elements, data has ${t.data.length}`);
}

const specsOf = (entries: [string, HostTensor][]): TensorSpec[] => entries.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
const entriesOf = (tensors: Record<string, HostTensor> | ReadonlyMap<string, HostTensor>): [string, HostTensor][] =>
  tensors instanceof Map ? [...tensors] : Object.entries(tensors);

/**
 * The safetensors bytes of `tensors` as chunks: the header, then each tensor's data as a view of
 * its own array (no copy), in file order. A writer (an HTTP answer) sends them one after another
 * without joining them; their lengths add up to the file's.
 */
export function safetensorsChunks(
  tensors: Record<string, HostTensor> | ReadonlyMap<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const entries = entriesOf(tensors);
  const byName = new Map(entries);
  const { head, order } = planLayout(specsOf(entries), metadata);
  for (const spec of order) checkData(spec, byName.get(spec.name)!);
  return [head, ...order.map(({ name }) => tensorBytes(byName.get(name)!))];
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes. Tensors are laid out in the
 * reference writer's order (see DTYPE_RANK), and the header is padded with spaces to a multiple of 8.
 * `__metadata__` is written only when `metadata` is given.
 */
export function serializeSafetensors(
  tensors: Record<string, HostTensor> | ReadonlyMap<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const chunks = safetensorsChunks(tensors, metadata);
  // Unpooled and not zero-filled: every byte is written just below.
  const out = new Uint8Array(Buffer.allocUnsafeSlow(chunks.reduce((n, c) => n + c.length, 0)).buffer);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Writes to a temporary file in the same folder, fsynced, then renamed over `path`. */
async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx');
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Writes a safetensors file atomically: a temporary file in the same folder, fsynced, then renamed. */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, HostTensor> | ReadonlyMap<string, HostTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata);
  await writeAtomically(path, async (fh) => { await fh.writeFile(bytes); });
}

async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(CHUNK, bytes.length - done), position + done);
    done += bytesWritten;
  }
}

/**
 * Writes a safetensors file tensor by tensor (atomically, like writeSafetensorsFile): the header is
 * planned from the specs, then `produce` is asked for each tensor in file order and its bytes are
 * written before the next is asked for, so memory holds one tensor at a time, whatever the file's size.
 */
export async function writeSafetensorsStream(
  path: string,
  specs: readonly TensorSpec[],
  produce: (spec: TensorSpec) => HostTensor | Promise<HostTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const { head, order } = planLayout(specs, metadata);
  await writeAtomically(path, async (fh) => {
    await writeFully(fh, head, 0);
    let at = head.length;
    for (const spec of order) {
      const t = await produce(spec);
      checkData(spec, t);
      await writeFully(fh, tensorBytes(t), at);
      at += t.data.byteLength;
    }
  });
}
