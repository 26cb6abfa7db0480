// Files a worker reads (weights, adapters, model files) must be regular files. A FIFO named
// `*.safetensors` would block the open, and with it a libuv thread, until a writer appears;
// /dev/zero never ends; a folder fails late with EISDIR. They are refused before a byte is read.
import { constants, statSync, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';

function kind(s: Stats): string {
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isDirectory()) return 'a folder';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

function notRegular(path: string, s: Stats): Error {
  return Object.assign(new Error(`${path} is ${kind(s)}, not a regular file`), { code: 'ENOTREGULAR' });
}

/** Throws unless `path` (symlinks followed) is a regular file. stat never blocks on a FIFO. */
export async function assertRegularFile(path: string): Promise<void> {
  const s = await stat(path);
  if (!s.isFile()) throw notRegular(path, s);
}

/** assertRegularFile for a synchronous reader (a config file read before anything starts). */
export function assertRegularFileSync(path: string): void {
  const s = statSync(path);
  if (!s.isFile()) throw notRegular(path, s);
}

/**
 * Opens `path` for reading, refusing what is not a regular file. The open is non-blocking (a FIFO
 * opens at once instead of waiting for a writer) and the check is on the opened handle, so a file
 * swapped after a stat cannot slip through. `extraFlags`: O_NOFOLLOW, say.
 */
export async function openRegularFile(path: string, extraFlags = 0): Promise<FileHandle> {
  const fh = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | extraFlags);
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw notRegular(path, s);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** The whole content of a regular file (refusing a FIFO, a device or a folder first). */
export async function readRegularFile(path: string): Promise<Buffer> {
  const fh = await openRegularFile(path);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
