// The omni-worker command line.
import { Command, InvalidArgumentError } from 'commander';
import { generateCommand } from './generate.ts';

function int(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function float(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number >= 0`);
    return n;
  };
}

export function buildProgram(): Command {
  const program = new Command('omni-worker').description('Diffusion and flow-matching models as RL rollout workers');
  program.command('generate')
    .description('generate images for a prompt; writes PNGs, grid.png and rollout.safetensors')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--negative-prompt <text>', 'prompt of the unconditional branch')
    .option('--num-images <n>', 'images (one seed each)', int('--num-images', 1), 4)
    .option('--steps <n>', 'denoising steps (model default when absent)', int('--steps', 1))
    .option('--guidance <w>', 'classifier-free guidance scale (model default when absent)', float('--guidance'))
    .option('--seed <k>', 'seed of the first image; image i uses seed + i', int('--seed', 0), 0)
    .option('--out <dir>', 'output folder, created when absent; checked before the model loads', 'out')
    .option('--overwrite', "replace an earlier run's outputs in --out (image-*.png, grid.png, rollout.safetensors); without it such a folder is refused. Other files stay", false)
    .option('--config <file>', 'worker config (YAML or JSON); the embedded model when absent')
    .action(async (opts) => {
      const files = await generateCommand(opts);
      console.log(`wrote ${files.length} files to ${opts.out}: ${files.map((f) => f.split('/').pop()).join(', ')}`);
    });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    console.error(`omni-worker: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
