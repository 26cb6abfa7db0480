// Adapter switch time between requests: the LoRA plugin's work before a batch (a merged-map
// lookup when cached, a merge on the first use of an adapter at a scale), and end to end.
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';
import { f32, type HostTensor } from '../core/tensors/tensor.ts';
import { definePlugin, type WorkerPlugin } from '../core/plugin.ts';
import { tapOptions } from '../core/hooks.ts';
import { benchWorker, median, round, timeReps, type BenchModel, type BenchOptions } from './weights-common.ts';

const ATTENTION = new Set(['qkv', 'proj', 'context_kv', 'to_q', 'to_k', 'to_v', 'to_out']);

/** Times the beforeExecute phase of each batch (where the adapter is merged or looked up). */
function timer(out: number[]): WorkerPlugin {
  return definePlugin({
    name: 'bench-timer',
    apply({ hooks }) {
      let t0 = 0;
      hooks.beforeExecute.tap(tapOptions('bench-timer', 'pre'), () => { t0 = performance.now(); });
      hooks.beforeExecute.tap(tapOptions('bench-timer', 'post'), () => { out.push(performance.now() - t0); });
    },
  });
}

export async function benchLora(o: BenchOptions, model: BenchModel) {
  const phase: number[] = [];
  const w = await benchWorker(o, model, ['dummy-loader', 'lora', 'bench-timer'], { 'bench-timer': timer(phase) });
  try {
    const params = w.worker.weights.parameters('transformer')!;
    const modules = [...params].filter(([n, p]) => n.startsWith('blocks.') && n.endsWith('.weight') && p.shape.length === 2 && ATTENTION.has(n.split('.').at(-2)!)).map(([n]) => n.slice(0, -7));
    const r = 32;
    const adapter = (seed: number) => {
      const tensors: Record<string, HostTensor> = {};
      modules.forEach((m, j) => {
        const [O, I] = params.get(`${m}.weight`)!.shape;
        const A = f32([r, I]);
        const B = f32([O, r]);
        fillGaussian(seed, 2 * j, A.data);
        fillGaussian(seed, 2 * j + 1, B.data);
        tensors[`base_model.model.${m}.lora_A.weight`] = A;
        tensors[`base_model.model.${m}.lora_B.weight`] = B;
      });
      return { config: { r, lora_alpha: 64, target_modules: [...new Set(modules.map((m) => m.split('.').at(-1)!))] }, tensors };
    };
    await w.executeMethod('addLora', { name: 'x', ...adapter(1) });
    await w.executeMethod('addLora', { name: 'y', ...adapter(2) });
    const req = (lora?: unknown) => [{ prompt: 'a red circle', seed: 1, ...(lora ? { lora } : {}) }];
    const gen = (lora?: unknown) => w.executeMethod('generate', req(lora));
    const phaseOf = async (reps: number, fn: (i: number) => Promise<unknown>) => {
      phase.length = 0;
      await timeReps(reps, fn);
      return median(phase);
    };
    const reps = Math.max(o.reps, 5);
    await gen(); // warm-up
    const noLora = await phaseOf(reps, () => gen());
    // x and y were merged at scale 1 by addLora; a scale never seen before is merged on the spot.
    const coldMerge = await phaseOf(reps, (i) => gen({ name: i % 2 ? 'x' : 'y', scale: 1 + (i + 1) / 64 }));
    const warmSwitch = await phaseOf(reps * 2, (i) => gen({ name: i % 2 ? 'x' : 'y' }));
    // End to end, interleaved so that drift (a shared machine) hits both alike: x x y y x x ...;
    // the first of each pair follows the other adapter's request (a switch), the second its own.
    const after: { switch: number[]; same: number[]; base: number[] } = { switch: [], same: [], base: [] };
    for (let i = 0; i < 4 * reps + 1; i++) {
      const [t] = await timeReps(1, () => gen({ name: Math.floor(i / 2) % 2 ? 'y' : 'x' }));
      if (i > 0) (i % 2 ? after.same : after.switch).push(t);
      if (i % 4 === 3) after.base.push(...(await timeReps(1, () => gen())));
    }
    const [e2eSame, e2eAlternating, e2eBase] = [median(after.same), median(after.switch), median(after.base)];
    const params2 = modules.reduce((s, m) => s + params.get(`${m}.weight`)!.shape.reduce((a, b) => a * b, 1), 0);
    return {
      model: model.name,
      adapter: { rank: r, alpha: 64, modules: modules.length, targetParams: params2, steps: w.worker.runner.defaults().steps },
      beforeBatchMs: { noAdapter: round(noLora), adapterSwitch: round(warmSwitch), mergeAtNewScale: round(coldMerge) },
      requestSeconds: { base: round(e2eBase), afterSameAdapter: round(e2eSame), afterOtherAdapter: round(e2eAlternating) },
      switchOverheadMs: round((e2eAlternating - e2eSame) * 1000),
    };
  } finally {
    await w.close();
  }
}
