// Writes the dummy architecture as a model folder (docs/model-folder.md), so that a model of any
// size exists without PyTorch. Weights are the dummy loader's seeded values (a folder written with
// seed K and dtype f32 holds the same weights as loadFormat 'dummy' with seed K), produced and
// written one tensor at a time: memory holds one parameter, whatever the model's size.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRECISION_DTYPE, writeSafetensorsStream, type ComponentName, type ModelSpec, type Precision } from '../../core/public.ts';
import type { DummyArch } from './architecture.ts';
import { dummyModelParts, seededParameterIn } from './index.ts';

/** The command line's names for the precisions. */
export type WeightDType = 'f32' | 'f16' | 'bf16';
export const PRECISION_OF: Record<WeightDType, Precision> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };

export interface WrittenModel {
  dir: string;
  files: string[];
  parameters: number;
  weightBytes: number;
}

/** Refuses a folder that holds anything: a model is never written over another's files. */
async function emptyFolder(dir: string): Promise<void> {
  const existing = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw new Error(`cannot use ${dir} as the model folder: ${e.message}`);
  });
  if (existing.length) throw new Error(`${dir} is not empty (${existing.length} entries): choose a new or empty folder`);
  await mkdir(dir, { recursive: true });
}

function modelCard(arch: DummyArch, parameters: number): string {
  return `# ${`dummy-h${arch.hidden}-l${arch.layers}`}

Written by \`omni-worker dummy-model\`: the dummy loader's architecture (plugins/dummy-loader) with
seeded random weights (seed ${arch.seed}), for tests and benchmarks. It draws noise, not pictures.

- ${parameters.toLocaleString('en-US')} parameters, weights in ${PRECISION_DTYPE[arch.dtype]}, computed in ${arch.dtype}
  (inputs and outputs float32)
- architecture: \`${JSON.stringify(arch)}\`
`;
}

/** Writes the folder; `arch.dtype` gives the weights' dtype and the graphs' precision. */
export async function writeDummyModelFolder(dir: string, arch: DummyArch): Promise<WrittenModel> {
  const { spec, tokenizer, components } = dummyModelParts(arch);
  await emptyFolder(dir);
  const st = PRECISION_DTYPE[arch.dtype];
  const files: string[] = [];
  const put = async (name: string, data: Uint8Array | string) => {
    await writeFile(join(dir, name), data);
    files.push(name);
  };
  let parameters = 0;
  let weightBytes = 0;
  const manifestComponents: ModelSpec['components'] = {} as ModelSpec['components'];
  for (const [name, c] of Object.entries(components) as [ComponentName, NonNullable<(typeof components)[ComponentName]>][]) {
    await put(`${name}.onnx`, c.graph);
    const specs = [...c.params].map(([n, shape]) => ({ name: n, dtype: st, shape }));
    await writeSafetensorsStream(join(dir, `${name}.safetensors`), specs, ({ name: n, shape }) => {
      const t = seededParameterIn(arch, n, shape, c.streams.get(n)!);
      parameters += t.data.length;
      weightBytes += t.data.byteLength;
      return t;
    }, { format: 'pt' });
    files.push(`${name}.safetensors`);
    manifestComponents[name] = { graph: `${name}.onnx`, weights: `${name}.safetensors` };
  }
  const manifest: ModelSpec = { ...spec, name: `dummy-h${arch.hidden}-l${arch.layers}`, tokenizer: 'tokenizer.json', components: manifestComponents };
  await put('tokenizer.json', `${JSON.stringify(tokenizer, null, 2)}\n`);
  await put('README.md', modelCard(arch, parameters));
  await put('model.json', `${JSON.stringify(manifest, null, 2)}\n`); // last: a folder with model.json is complete
  return { dir, files, parameters, weightBytes };
}
