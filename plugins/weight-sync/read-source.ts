// What loadWeights accepts, read into named tensors: a .safetensors path, .safetensors bytes, or
// named tensors ({ dtype, shape, data }). Every problem is an error naming the source and the tensor.
import { asTensor, assertRegularFile, firstNonFinite, parseSafetensors, readSafetensorsTensors, type HostTensor } from '../../core/public.ts';

export type WeightSource = string | Uint8Array | Record<string, HostTensor>;

export interface ReadTensors {
  tensors: [string, HostTensor][];
  /** True when the arrays are ours (read from a file, or cloned into the thread): no defensive copy. */
  owned: boolean;
  /** For messages: "file /x.safetensors", "safetensors bytes", "named tensors". */
  what: string;
  /** True when every tensor was checked while it was read and holds no NaN or infinity. */
  finite?: boolean;
}

export async function readWeightSource(source: unknown): Promise<ReadTensors> {
  if (typeof source === 'string') {
    if (!source.endsWith('.safetensors')) throw new Error(`loadWeights: source path ${source} is not a .safetensors file`);
    let tensors;
    // Each piece is checked for NaN and infinity as it arrives, while the next ones are read.
    let finite = true;
    const onRead = (_: string, t: HostTensor, start: number, end: number) => { if (finite && firstNonFinite(t, start, end) >= 0) finite = false; };
    try {
      await assertRegularFile(source); // a FIFO would block the read forever
      ({ tensors } = await readSafetensorsTensors(source, { onRead })); // tensor by tensor: files over 2 GiB too
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new Error(`loadWeights: ${err.code === 'ENOTREGULAR' ? err.message : `cannot read ${source}: ${err.message}`}`);
    }
    return { tensors, owned: true, what: `file ${source}`, finite };
  }
  if (source instanceof Uint8Array) {
    let file;
    try {
      file = parseSafetensors(source);
    } catch (e) {
      throw new Error(`loadWeights: safetensors bytes (${source.byteLength} bytes): ${(e as Error).message}`);
    }
    return { tensors: file.names.map((n) => [n, file.get(n)]), owned: false, what: 'safetensors bytes' };
  }
  if (source !== null && typeof source === 'object' && !ArrayBuffer.isView(source) && !Array.isArray(source)) {
    const tensors = Object.entries(source as Record<string, unknown>).map(([n, t]): [string, HostTensor] => [n, asTensor(t, `loadWeights: tensor '${n}'`)]);
    return { tensors, owned: false, what: 'named tensors' };
  }
  throw new Error('loadWeights: source must be a .safetensors path, .safetensors bytes (Uint8Array) or named tensors { name: { dtype, shape, data } }');
}
