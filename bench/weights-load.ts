// loadWeights throughput against a plain copy of the same bytes, in the same process and run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeSafetensors, writeSafetensorsFile } from '../core/tensors/safetensors.ts';
import { fromFloat32 } from '../core/tensors/dtype-convert.ts';
import { tensor, type HostTensor } from '../core/tensors/tensor.ts';
import { createWorker } from '../index.ts';
import { forceGc } from '../plugins/sleep-mode/memory.ts';
import { benchWorker, best, GB, round, timeReps, type BenchModel, type BenchOptions } from './weights-common.ts';

const BUCKET_BYTES = 64 * 2 ** 20;

export async function benchLoad(o: BenchOptions, model: BenchModel, thread: boolean) {
  const w = await benchWorker(o, model, ['dummy-loader', 'weight-sync']);
  const dir = await mkdtemp(join(tmpdir(), 'omni-bench-'));
  try {
    const weights = w.worker.weights.get('transformer')!;
    const record: Record<string, HostTensor> = Object.fromEntries(weights);
    const bytes = serializeSafetensors(weights);
    const half = serializeSafetensors(Object.fromEntries([...weights].map(([n, t]) => [n, tensor('BF16', t.shape, fromFloat32(t.data as Float32Array, 'BF16'))])));
    const path = join(dir, 'transformer.safetensors');
    await writeSafetensorsFile(path, weights);
    const weightBytes = [...weights.values()].reduce((s, t) => s + t.data.byteLength, 0);
    const buckets = bucketize(record);
    const load = (source: unknown) => w.executeMethod('loadWeights', { source });
    // Each timing is the best of `reps`, with a GC before each (untimed) so that garbage from
    // earlier runs is not collected inside it.
    const rep = async (fn: () => Promise<unknown>) => {
      const times: number[] = [];
      for (let i = 0; i < o.reps; i++) {
        forceGc();
        times.push(...(await timeReps(1, fn)));
      }
      return best(times);
    };
    const copy = await rep(async () => bytes.slice());
    const warm = new Uint8Array(bytes.length).fill(1); // memcpy alone: no allocation, no page faults
    const memcpy = await rep(async () => warm.set(bytes));
    const fromBytes = await rep(() => load(bytes));
    const fromRecord = await rep(() => load(record));
    const fromPath = await rep(() => load(path));
    const fromBf16 = await rep(() => load(half));
    const bucketed = await rep(async () => {
      for (const b of buckets) await w.executeMethod('loadWeights', { source: b, bucket: true });
      await w.executeMethod('finishWeightUpdate');
    });
    const gbps = (s: number) => round(weightBytes / s / GB);
    const result = {
      model: model.name,
      tensors: weights.size,
      weightBytes,
      plainCopyGBps: gbps(copy),
      memcpyIntoWarmBufferGBps: gbps(memcpy),
      loadWeights: {
        safetensorsBytes: { GBps: gbps(fromBytes), ratioToCopy: round(copy / fromBytes) },
        namedTensors: { GBps: gbps(fromRecord), ratioToCopy: round(copy / fromRecord) },
        bucketed64MiB: { buckets: buckets.length, GBps: gbps(bucketed), ratioToCopy: round(copy / bucketed) },
        bf16ToF32: { GBps: gbps(fromBf16), ratioToCopy: round(copy / fromBf16), note: 'GB/s of float32 weights written' },
        safetensorsPathPageCache: { GBps: gbps(fromPath), ratioToCopy: round(copy / fromPath), note: 'includes the file read' },
      } as Record<string, unknown>,
    };
    if (thread) result.loadWeights.acrossWorkerThread = await benchThread(o, model, bytes, copy, weightBytes);
    return result;
  } finally {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Through createWorker: the bytes are structured-cloned into the inference thread first. */
async function benchThread(o: BenchOptions, model: BenchModel, bytes: Uint8Array, copy: number, weightBytes: number) {
  const w = await createWorker({ ...model.config, device: o.device, plugins: ['dummy-loader', 'weight-sync'] });
  try {
    const s = best(await timeReps(o.reps, () => w.executeMethod('loadWeights', { source: bytes })));
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.length));
    shared.set(bytes);
    const t = best(await timeReps(o.reps, () => w.executeMethod('loadWeights', { source: shared })));
    // Moved, not copied: each repetition hands over a fresh buffer made before the clock starts.
    const fresh = Array.from({ length: o.reps }, () => bytes.slice());
    let k = 0;
    const m = best(await timeReps(o.reps, () => {
      const b = fresh[k++];
      return w.executeMethodTransfer('loadWeights', [{ source: b }], [b.buffer as ArrayBuffer]);
    }));
    return {
      transferred: { GBps: round(weightBytes / m / GB), ratioToCopy: round(copy / m), note: 'a Uint8Array moved with executeMethodTransfer: no clone, used in place' },
      cloned: { GBps: round(weightBytes / s / GB), ratioToCopy: round(copy / s), note: 'a Uint8Array: structured-cloned into the thread, then used in place' },
      sharedArrayBuffer: { GBps: round(weightBytes / t / GB), ratioToCopy: round(copy / t), note: 'bytes in a SharedArrayBuffer: no clone, one copy in the worker' },
    };
  } finally {
    await w.close();
  }
}

function bucketize(record: Record<string, HostTensor>): Record<string, HostTensor>[] {
  const out: Record<string, HostTensor>[] = [];
  let cur: Record<string, HostTensor> = {};
  let size = 0;
  for (const [n, t] of Object.entries(record)) {
    if (size && size + t.data.byteLength > BUCKET_BYTES) {
      out.push(cur);
      cur = {};
      size = 0;
    }
    cur[n] = t;
    size += t.data.byteLength;
  }
  if (size) out.push(cur);
  return out;
}
