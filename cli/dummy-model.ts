// `omni-worker dummy-model`: writes a runnable model folder of the dummy architecture, of any size.
import { describeZodError } from '../core/public.ts';
import { dummyArchSchema } from '../plugins/dummy-loader/architecture.ts';
import { PRECISION_OF, writeDummyModelFolder, type WeightDType, type WrittenModel } from '../plugins/dummy-loader/write-folder.ts';

export interface DummyModelOptions {
  out: string;
  hidden?: number;
  layers?: number;
  heads?: number;
  height?: number;
  width?: number;
  dtype: WeightDType;
  seed?: number;
}

export async function dummyModelCommand(opts: DummyModelOptions): Promise<WrittenModel> {
  const { out, dtype, ...given } = opts;
  const hidden = given.hidden ?? 32;
  if (given.heads !== undefined && hidden % given.heads) throw new Error(`dummy-model: --hidden ${hidden} is not a multiple of --heads ${given.heads}`);
  const parsed = dummyArchSchema.safeParse({ ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)), dtype: PRECISION_OF[dtype] });
  if (!parsed.success) throw new Error(`dummy-model: ${describeZodError(parsed.error)}`);
  if (parsed.data.height % parsed.data.downscale || parsed.data.width % parsed.data.downscale) {
    throw new Error(`dummy-model: --height and --width must be multiples of ${parsed.data.downscale} (the latent downscale), got ${parsed.data.height}x${parsed.data.width}`);
  }
  return writeDummyModelFolder(out, parsed.data);
}
