// A fleet worker applies a committed weights version: every object streams from the object store
// (all at once) straight into per-tensor arrays; complete tensors go to the inference thread in
// groups of about GROUP_BYTES, moved, not copied, and are staged there (loadWeights with bucket)
// while the rest downloads. Only when every object has arrived whole (the object store checks
// its SHA-256) does finishWeightUpdate commit them, as one version; any failure aborts the
// staged groups, so a worker applies a version whole or not at all.
import type { ObjectStore } from '@nats-io/obj';
import type { OmniWorker } from '../index.ts';
import type { ComponentName } from '../core/model/manifest.ts';
import { SafetensorsStreamReader } from '../core/tensors/safetensors-stream.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import type { WeightsRecord } from './records.ts';

export interface ApplyOptions {
  /** Tensors per trip to the inference thread: large enough that trips cost nothing, small enough to overlap the download. */
  groupBytes?: number;
  /**
   * An object that sends nothing for this long fails the version: its chunks may have been
   * deleted under the reader (a commit drops versions older than the previous one), and the
   * worker must go on to the newest version rather than wait forever.
   */
  stallMs?: number;
}

interface Transfer {
  /** loadWeights calls handed to the inference thread. */
  staging: Promise<unknown>[];
  /** Set on the first failure: the other objects stop streaming. */
  failed: boolean;
  groupBytes: number;
  stallMs: number;
}

/**
 * Streams and stages every object of `record`, then commits through `inOrder` (the caller runs
 * the commit between its rollouts). Throws, with nothing applied, on any failure.
 */
export async function applyWeightsVersion(
  blobs: Pick<ObjectStore, 'get'>, worker: OmniWorker, record: WeightsRecord, inOrder: (commit: () => Promise<void>) => Promise<void>, options: ApplyOptions = {},
): Promise<void> {
  const transfer: Transfer = { staging: [], failed: false, groupBytes: options.groupBytes ?? 64 << 20, stallMs: options.stallMs ?? 30_000 };
  const streams = record.objects.map((o) => streamObject(blobs, worker, record.version, o, transfer).catch((e: Error) => {
    transfer.failed = true;
    throw e;
  }));
  // Every stream has ended and every group handed over has settled before the commit or the
  // abort: a group staged after an abort would ride along with the next version.
  const settled = [...await Promise.allSettled(streams), ...await Promise.allSettled(transfer.staging)];
  const failure = settled.find((s) => s.status === 'rejected');
  if (failure) {
    await worker.executeMethod('abortWeightUpdate').catch(() => undefined);
    throw failure.reason;
  }
  try {
    await inOrder(async () => { await worker.executeMethod('finishWeightUpdate'); });
  } catch (e) {
    await worker.executeMethod('abortWeightUpdate').catch(() => undefined);
    throw e;
  }
}

async function streamObject(blobs: Pick<ObjectStore, 'get'>, worker: OmniWorker, version: number, o: WeightsRecord['objects'][number], transfer: Transfer): Promise<void> {
  const where = `weights object ${o.name} of version ${version}`;
  const got = await blobs.get(o.name);
  if (!got) throw new Error(`${where} is missing from the object store`);
  const reader = new SafetensorsStreamReader(got.info.size);
  let group: [string, HostTensor][] = [];
  let groupBytes = 0;
  const send = () => {
    if (!group.length) return;
    const source = Object.fromEntries(group);
    const buffers = group.map(([, t]) => t.data.buffer as ArrayBuffer);
    const staged = worker.executeMethodTransfer('loadWeights', [{ component: o.component as ComponentName, source, bucket: true }], buffers);
    // Handled now (a refusal stops the download), reported after every stream has ended.
    staged.catch(() => { transfer.failed = true; });
    transfer.staging.push(staged);
    group = [];
    groupBytes = 0;
  };
  const chunks = got.data.getReader();
  let stall: NodeJS.Timeout | undefined;
  const stalled = () => new Promise<never>((_, reject) => {
    stall = setTimeout(() => reject(new Error(`no data for ${transfer.stallMs} ms (deleted by a newer version's commit?)`)), transfer.stallMs);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([chunks.read(), stalled()]);
      clearTimeout(stall);
      if (done) break;
      if (transfer.failed) return; // another object failed: this one is not needed
      for (const t of reader.push(value)) {
        group.push(t);
        groupBytes += t[1].data.byteLength;
        if (groupBytes >= transfer.groupBytes) send();
      }
    }
    await got.error; // the object store's digest check
    reader.end();
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  } finally {
    clearTimeout(stall);
    chunks.cancel().catch(() => undefined); // stops the consumer when the loop left early
  }
  send();
}
