// The fleet points the object store library's SHA-256 at node:crypto (fleet/object-digest.ts):
// the digests must be js-sha256's, byte for byte (objects stay readable by every NATS client),
// and the library must still hash through it (else a dependency update silently brings back the
// slow hash, or a corrupt object goes unchecked).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { StorageType } from '@nats-io/jetstream';
import { useNodeDigest } from '../fleet/object-digest.ts';
import { freePort, startNats, stop } from './support/nats.ts';

type Hasher = { update(m: unknown): Hasher; digest(): number[]; hex(): string; arrayBuffer(): ArrayBuffer };
const jsSha256 = createRequire(createRequire(import.meta.url).resolve('@nats-io/obj'))('js-sha256') as { sha256: { create(): Hasher } };
const original = jsSha256.sha256.create;
const dir = mkdtempSync(join(tmpdir(), 'object-digest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the object store digest on node:crypto', () => {
  it('hashes as js-sha256 does, whatever the pieces (bytes, strings, array buffers)', () => {
    const hashed = useNodeDigest();
    expect(hashed).toBe(jsSha256);
    expect(jsSha256.sha256.create).not.toBe(original);
    const piece = fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.string({ maxLength: 50 }), fc.uint8Array({ maxLength: 64 }).map((b) => b.slice().buffer));
    fc.assert(fc.property(fc.array(piece, { maxLength: 6 }), (pieces) => {
      const [ours, theirs] = [jsSha256.sha256.create(), original()];
      for (const p of pieces) {
        ours.update(p);
        theirs.update(p);
      }
      expect(ours.digest()).toEqual(theirs.digest());
      expect([ours.hex(), new Uint8Array(ours.arrayBuffer())]).toEqual([theirs.hex(), new Uint8Array(theirs.arrayBuffer())]);
    }));
  });

  it('the object store library hashes through it when it stores and reads an object, and the stored digest is the standard one', async () => {
    useNodeDigest();
    const port = await freePort();
    const nats = await startNats(port, join(dir, 'store'));
    const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    const installed = jsSha256.sha256.create;
    let created = 0;
    jsSha256.sha256.create = () => {
      created++;
      return installed();
    };
    try {
      const store = await new Objm(nc).create('digest_test', { storage: StorageType.File });
      const bytes = new Uint8Array(3000).map((_, i) => (i * 7) & 255);
      const info = await store.putBlob({ name: 'x', options: { max_chunk_size: 1024 } }, bytes);
      expect(info.digest).toBe(`SHA-256=${createHash('sha256').update(bytes).digest('base64url')}=`);
      expect(await store.getBlob('x')).toEqual(bytes);
      expect(created).toBe(2); // one hash for the put, one for the read
    } finally {
      jsSha256.sha256.create = installed;
      await nc.close();
      await stop(nats);
    }
  });
});
