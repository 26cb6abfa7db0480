// The omni-worker command line.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { PACKAGE_ROOT } from '../core/package-paths.ts';
import { generateCommand } from './generate.ts';
import { dummyModelCommand } from './dummy-model.ts';
import { setupCuda } from './setup-cuda.ts';
import { serveCommand } from './serve.ts';
import { fleetWorkerCommand } from './fleet-worker.ts';

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
  const { version } = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  const program = new Command('omni-worker').version(version).description('Diffusion and flow-matching models as RL rollout workers');
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
  program.command('dummy-model')
    .description('write a runnable model folder of the dummy architecture with seeded weights, of any size')
    .requiredOption('--out <dir>', 'the model folder to write (new or empty)')
    .option('--hidden <n>', 'transformer width (default 32)', int('--hidden', 1))
    .option('--layers <n>', 'transformer blocks (default 2)', int('--layers', 1))
    .option('--heads <n>', 'attention heads; --hidden must be a multiple (default 1)', int('--heads', 1))
    .option('--height <px>', 'image height, a multiple of 2 (default 16)', int('--height', 2))
    .option('--width <px>', 'image width, a multiple of 2 (default 16)', int('--width', 2))
    .addOption(new Option('--dtype <type>', 'weights dtype in the .safetensors files, and the precision the graphs compute in (inputs and outputs stay float32)').choices(['f32', 'f16', 'bf16']).default('f32'))
    .option('--seed <k>', 'seed of the weights (default 0)', int('--seed', 0))
    .action(async (opts) => {
      const m = await dummyModelCommand(opts);
      console.log(`wrote ${m.dir}: ${m.parameters.toLocaleString('en-US')} parameters, ${(m.weightBytes / 1e9).toFixed(3)} GB of weights (${m.files.join(', ')})`);
    });
  program.command('serve')
    .description('serve the worker over HTTP to trainers (vLLM-style RL routes; docs/serve.md)')
    .option('--config <file>', 'worker config (YAML or JSON); the embedded model when absent')
    .option('--host <addr>', 'address to bind; other than loopback needs --token', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', int('--port', 0), 8000)
    .option('--token <t>', 'bearer token every route but /health asks for (or OMNI_WORKER_TOKEN)')
    .option('--coalesce-ms <ms>', 'how long an idle worker waits for concurrent rollout calls to merge', float('--coalesce-ms'))
    .option('--max-queued-samples <n>', 'samples waiting at most before 429 Retry-After', int('--max-queued-samples', 1))
    .option('--weight-roots <dirs...>', 'folders /update_weights_from_path may read (default /dev/shm and the temp folder)')
    .option('--log', 'log each request (fastify logger)', false)
    .option('--fleet', 'serve a NATS fleet of fleet-workers instead of a local worker (docs/fleet.md)', false)
    .option('--nats <url>', 'with --fleet: the NATS server URL(s)')
    .option('--fleet-options <json>', 'with --fleet: fleet timings as JSON (docs/fleet.md)')
    .action(async (opts) => { await serveCommand(opts); });
  program.command('setup')
    .description("install a device's runtime: `setup cuda` puts ONNX Runtime's CUDA provider in place from the npm registry")
    .addArgument(new Argument('<target>', 'what to set up').choices(['cuda']))
    .option('--from <tgz>', 'use this package tarball instead of fetching it (offline machines); its integrity is checked')
    .action(async (_target: string, opts: { from?: string }) => {
      const r = await setupCuda({ from: opts.from, log: (line) => console.log(line) });
      if (r.problem) {
        console.log(`not ready yet: ${r.problem}`);
        process.exitCode = 1;
      } else {
        console.log("ready: set `device: cuda` in the worker config");
      }
    });
  program.command('fleet-worker')
    .description('serve a NATS JetStream fleet: pull rollout parts, apply weight versions, answer broadcasts (docs/fleet.md)')
    .requiredOption('--nats <url>', 'NATS server URL(s), comma-separated (nats-server -js)')
    .option('--config <file>', 'worker config (YAML or JSON); the embedded model when absent')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (overrides the config)', int('--threads', 1))
    .option('--id <id>', 'registry id (host-pid-random by default)')
    .option('--fleet-options <json>', 'fleet timings as JSON (ackWaitMs, heartbeatMs, ...; docs/fleet.md)')
    .action(async (opts) => {
      await fleetWorkerCommand(opts, (line) => console.log(line));
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
