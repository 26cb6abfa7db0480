// `omni-worker generate`: images from a prompt, plus the rollout as rollout.safetensors.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Listr } from 'listr2';
import { createWorker, type OmniWorker } from '../index.ts';
import { loadConfigFile } from '../core/config/load-config.ts';
import { gridPng, imagePng } from '../core/image/png.ts';
import { RolloutBatch } from '../core/rollout/rollout-batch.ts';
import type { GenerateRequest } from '../core/protocol.ts';
import { clearStale, prepareOutDir } from './out-dir.ts';

export interface GenerateOptions {
  prompt: string;
  numImages: number;
  steps?: number;
  guidance?: number;
  seed: number;
  out: string;
  /** Replace an earlier run's outputs in `out` (refused otherwise). */
  overwrite?: boolean;
  config?: string;
  negativePrompt?: string;
}

/** Runs the rollout with a progress bar on a terminal, plain lines otherwise. */
async function runWithProgress(worker: OmniWorker, request: GenerateRequest, bar: boolean): Promise<RolloutBatch> {
  if (!bar) {
    worker.events.on('step', (s) => console.log(`step ${s.step}/${s.steps} (batch of ${s.batchSize})`));
    return worker.generate([request]);
  }
  let result: RolloutBatch | undefined;
  await new Listr([{
    title: `Generating ${request.numOutputsPerPrompt} image(s) for "${request.prompt}"`,
    task: async (_, task) => {
      const width = 30;
      worker.events.on('step', (s) => {
        const done = Math.round((width * s.step) / s.steps);
        task.output = `[${'#'.repeat(done)}${'.'.repeat(width - done)}] step ${s.step}/${s.steps}`;
      });
      result = await worker.generate([request]);
    },
  }], { rendererOptions: { collapseSubtasks: false } }).run();
  return result!;
}

export async function generateCommand(opts: GenerateOptions): Promise<string[]> {
  // The config first: reading it has no side effect, so a bad one leaves no --out folder behind.
  const config = opts.config ? loadConfigFile(opts.config) : undefined;
  // Before the model loads: a folder that cannot take the outputs must not cost a rollout.
  const outDir = await prepareOutDir(opts.out, opts.overwrite ?? false);
  const worker = await createWorker(config);
  try {
    const request: GenerateRequest = {
      prompt: opts.prompt,
      numOutputsPerPrompt: opts.numImages,
      seed: opts.seed,
      ...(opts.negativePrompt !== undefined ? { negativePrompt: opts.negativePrompt } : {}),
      ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
      ...(opts.guidance !== undefined ? { guidanceScale: opts.guidance } : {}),
    };
    // A bar needs a terminal wide enough to draw it; otherwise plain lines.
    const bar = Boolean(process.stdout.isTTY) && (process.stdout.columns ?? 0) >= 40;
    const rollout = await runWithProgress(worker, request, bar);
    await clearStale(outDir);
    const written: string[] = [];
    const images = rollout.batch.responses!; // core's pipeline always returns the images
    for (let b = 0; b < images.shape[0]; b++) {
      const path = join(outDir.path, `image-${String(b).padStart(3, '0')}-seed${rollout.nonTensorBatch.seed![b]}.png`);
      await writeFile(path, imagePng(images, b));
      written.push(path);
    }
    const grid = join(outDir.path, 'grid.png');
    await writeFile(grid, gridPng(images, { zoom: images.shape[2] < 128 ? 4 : 1 }));
    const rolloutPath = join(outDir.path, 'rollout.safetensors');
    await rollout.save(rolloutPath);
    written.push(grid, rolloutPath);
    return written;
  } finally {
    await worker.close();
  }
}
