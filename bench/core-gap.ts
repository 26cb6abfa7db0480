// Where the worker's time goes beyond ONNX Runtime's, on one device: the transformer alone in
// four variants (fixed inputs; hidden states refilled each step; plus the CFG and Euler JS;
// a varying timestep), then inline and thread workers on the same batch (16 images, 10 steps,
// CFG, prompt cache off). Diagnostic, not part of npm run bench.
//   node bin/run-ts.js bench/core-gap.ts [cuda|cpu]
import * as ort from 'onnxruntime-node';
import { createWorker, withDefaultModel } from '../index.ts';
import { resolveConfig } from '../core/config/load-config.ts';
import { loadModelFolder } from '../core/model/folder-loader.ts';
import { toOrt } from '../core/model/onnx-component.ts';
import { sessionOptions } from '../core/model/execution-provider.ts';
const device = (process.argv[2] ?? 'cuda') as 'cuda' | 'cpu';
const config = withDefaultModel(resolveConfig({ device, promptCacheSize: 0 }));
const src = await loadModelFolder(config.model!);
const s = await ort.InferenceSession.create(src.components.transformer.graph, sessionOptions(device, undefined));
const w: Record<string, ort.Tensor> = {};
for (const n of s.inputNames) if (!['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep'].includes(n)) w[n] = toOrt(src.components.transformer.weights.get(n)!);
const B = 16, rows = 32, per = 3 * 32 * 32;
const mk = (n: number, v = 0.1) => new Float32Array(n).fill(v);
const fixed = { hidden_states: new ort.Tensor('float32', mk(rows * per), [rows, 3, 32, 32]), encoder_hidden_states: new ort.Tensor('float32', mk(rows * 24 * 128), [rows, 24, 128]), pooled_projections: new ort.Tensor('float32', mk(rows * 128), [rows, 128]), timestep: new ort.Tensor('float32', mk(rows, 500), [rows]) };
async function variant(name: string, step: (i: number) => Promise<void>) {
  for (let i = 0; i < 10; i++) await step(i);
  const ts: number[] = [];
  for (let r = 0; r < 15; r++) { const t0 = performance.now(); for (let i = 0; i < 10; i++) await step(i); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b); console.log(name.padEnd(40), 'median ms per 10 steps', ts[7].toFixed(1));
}
await variant('bare fixed inputs', async () => { await s.run({ ...fixed, ...w }); });
const hid = mk(rows * per); const lat = mk(B * per);
await variant('bare, hidden refilled from real-ish latents', async (i) => { for (let k = 0; k < lat.length; k++) lat[k] = Math.sin(k + i); hid.set(lat); hid.set(lat, lat.length); await s.run({ ...fixed, hidden_states: new ort.Tensor('float32', hid, [rows, 3, 32, 32]), ...w }); });
await variant('bare + CFG + Euler JS', async () => { const o = await s.run({ ...fixed, ...w }); const v = o.out_hidden_states.data as Float32Array; const n = B * per; const g = new Float32Array(n); for (let k = 0; k < n; k++) { const vu = v[n + k]; g[k] = vu + Math.fround(4.5 * Math.fround(v[k] - vu)); } const x = new Float32Array(n); for (let k = 0; k < n; k++) x[k] = lat[k] + Math.fround(-0.05 * g[k]); });
await variant('bare, timestep varies', async (i) => { await s.run({ ...fixed, timestep: new ort.Tensor('float32', mk(rows, 1000 - 90 * i), [rows]), ...w }); });
const inl = await createWorker({ ...config, executor: 'inline' });
const th = await createWorker(config);
for (const [name, wk] of [['inline worker', inl], ['thread worker', th]] as const) {
  await wk.generate([{ prompt: 'x', numOutputsPerPrompt: B, seed: 0 }]);
  const ts: number[] = [];
  for (let r = 0; r < 15; r++) { const t0 = performance.now(); await wk.generate([{ prompt: 'a red circle', numOutputsPerPrompt: B, seed: r }]); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b); console.log(name.padEnd(40), 'median ms per call', ts[7].toFixed(1));
}
await inl.close(); await th.close();
