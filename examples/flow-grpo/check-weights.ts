// Loads a Flow-GRPO result's weights into a CPU worker (`loadWeights`) and measures what the run
// reported, with the reward classifier in ONNX Runtime (no PyTorch, no GPU):
//   node bin/run-ts.js examples/flow-grpo/check-weights.ts [RESULTS_DIR] [--threads N]
// Prints JSON: held-out three-object and single-object accuracy of the start model and of the
// trained weights (the run's evaluation: ODE, the same seeds), and sample diversity across seeds.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createWorker, rewards, type OmniWorker } from '../../index.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
export const SINGLE_PROMPTS = resolve(HERE, '../../python/results/prompts_single.txt');
/** flow_grpo/evaluation.py's EVAL_SEED: prompt k's samples use seeds EVAL_SEED + k*S + (0..S-1). */
export const EVAL_SEED = 7_000_000;

export interface PromptSetFigures {
  /** Fraction of samples with every named object right (the reward's hard score is 1). */
  accuracy: number;
  samples: number;
  /** Mean over prompts of the per-pixel standard deviation across the prompt's seeds (0-255);
   * with one seed per prompt, absent. */
  diversity?: number;
}

export const readPrompts = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l.trim());

export async function measure(worker: OmniWorker, scorer: rewards.SceneAlignmentReward, prompts: string[], seedsPerPrompt: number): Promise<PromptSetFigures> {
  const r = await worker.generate(prompts.map((prompt, k) => ({ prompt, numOutputsPerPrompt: seedsPerPrompt, seed: EVAL_SEED + k * seedsPerPrompt })));
  const images = r.batch.responses!;
  const pixels = images.data as Uint8Array;
  const scores = await scorer.score({ data: pixels, shape: images.shape }, r.nonTensorBatch.prompt!);
  const figures: PromptSetFigures = { accuracy: scores.filter((s) => s === 1).length / scores.length, samples: scores.length };
  if (seedsPerPrompt > 1) figures.diversity = diversity(pixels, prompts.length, seedsPerPrompt);
  return figures;
}

function diversity(pixels: Uint8Array, prompts: number, seeds: number): number {
  const per = pixels.length / (prompts * seeds);
  let total = 0;
  for (let k = 0; k < prompts; k++) {
    for (let i = 0; i < per; i++) {
      let sum = 0, sq = 0;
      for (let j = 0; j < seeds; j++) {
        const v = pixels[(k * seeds + j) * per + i]!;
        sum += v;
        sq += v * v;
      }
      const mean = sum / seeds;
      total += Math.sqrt(Math.max(0, sq / seeds - mean * mean));
    }
  }
  return total / (prompts * per);
}

export interface WeightsCheck {
  start: { heldout: PromptSetFigures; single: PromptSetFigures };
  trained: { heldout: PromptSetFigures; single: PromptSetFigures; weightsVersion: number };
}

/** The start model, then `loadWeights` of the result's transformer, on the result's held-out prompts. */
export async function checkWeights(resultsDir: string, options: { threads?: number; seedsPerPrompt?: number; heldout?: number } = {}): Promise<WeightsCheck> {
  const S = options.seedsPerPrompt ?? 4;
  const weights = join(resultsDir, 'transformer-flow-grpo.safetensors');
  for (const f of [join(resultsDir, 'heldout_prompts.txt'), weights]) {
    if (!existsSync(f)) throw new Error(`check-weights: ${f} not found (a results folder holds heldout_prompts.txt and transformer-flow-grpo.safetensors)`);
  }
  const heldout = readPrompts(join(resultsDir, 'heldout_prompts.txt')).slice(0, options.heldout);
  const single = readPrompts(SINGLE_PROMPTS);
  const worker = await createWorker({ device: 'cpu', threads: options.threads ?? 2, maxBatchSize: 64 });
  const scorer = await rewards.SceneAlignmentReward.load();
  try {
    const start = { heldout: await measure(worker, scorer, heldout, S), single: await measure(worker, scorer, single, 1) };
    const { weightsVersion } = await worker.executeMethod('loadWeights', { component: 'transformer', source: weights });
    const trained = { heldout: await measure(worker, scorer, heldout, S), single: await measure(worker, scorer, single, 1), weightsVersion };
    return { start, trained };
  } finally {
    await scorer.dispose();
    await worker.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { values, positionals } = parseArgs({ allowPositionals: true, options: { threads: { type: 'string' } } });
    const threads = values.threads === undefined ? undefined : Number(values.threads);
    if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new Error(`--threads must be a positive integer, got '${values.threads}'`);
    if (positionals.length > 1) throw new Error(`one results folder at most, got ${positionals.length}`);
    const dir = resolve(positionals[0] ?? join(HERE, 'results/2026-11-29-h200-run4'));
    console.log(JSON.stringify(await checkWeights(dir, { threads }), null, 1));
  } catch (e) {
    console.error(`check-weights: ${(e as Error).message.replace(/^check-weights: /, '')}`);
    process.exit(2);
  }
}
