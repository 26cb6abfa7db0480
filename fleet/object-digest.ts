// The object store library (@nats-io/obj) hashes every object it writes and reads with js-sha256,
// plain JavaScript: 60-150 MB/s on the 2-core machine, against 1.3 GB/s for node:crypto (SHA-NI).
// That hash was most of the time of a weights version (a 1 GB version to 4 workers: 119 s, of
// which the hashing alone was ~50 s of CPU; BENCHMARKS.md). The library calls
// `sha256.create()` of the js-sha256 module it requires each time it hashes, so the fleet points
// that one function at node:crypto: the same SHA-256 (the digests stored and checked are the same
// bytes, so objects stay readable by any NATS client), a 10-20x faster engine.
// test/object-digest.test.ts checks the digests and that the library still goes through it.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

interface Sha256Module {
  sha256: { create: () => unknown };
}

/** A js-sha256 hasher's surface (update chained, digest as a byte array, hex) on node:crypto. */
class NodeSha256 {
  private readonly hash = createHash('sha256');
  private bytes: Buffer | undefined;

  update(message: string | ArrayBuffer | ArrayBufferView): this {
    if (this.bytes) throw new Error('sha256: update after digest');
    if (typeof message === 'string') this.hash.update(message, 'utf8');
    else if (message instanceof ArrayBuffer) this.hash.update(new Uint8Array(message));
    else this.hash.update(new Uint8Array(message.buffer, message.byteOffset, message.byteLength));
    return this;
  }

  private final(): Buffer {
    this.bytes ??= this.hash.digest();
    return this.bytes;
  }

  digest(): number[] {
    return [...this.final()];
  }

  array(): number[] {
    return this.digest();
  }

  arrayBuffer(): ArrayBuffer {
    return new Uint8Array(this.final()).buffer;
  }

  hex(): string {
    return this.final().toString('hex');
  }

  toString(): string {
    return this.hex();
  }
}

let installed: Sha256Module | undefined;

/**
 * Points the object store library's SHA-256 at node:crypto (idempotent). Returns the js-sha256
 * module the library uses, so a test can check the library still resolves it.
 */
export function useNodeDigest(): Sha256Module {
  if (installed) return installed;
  const fromObj = createRequire(createRequire(import.meta.url).resolve('@nats-io/obj'));
  const mod = fromObj('js-sha256') as Sha256Module;
  mod.sha256.create = () => new NodeSha256();
  installed = mod;
  return mod;
}
