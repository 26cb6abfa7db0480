// Times the exported transformer on CPU the way the worker runs it: 16 images x 10 steps with CFG
// = 10 calls of batch 32, weights fed as graph inputs, intra-op threads 2.
//   node python/tools/time_transformer.mjs models/shapes-dit/transformer.onnx [threads] [images]
// Weights: <graph>.safetensors beside it if present, else random (same shapes).
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url + '/../../../');
const ort = require('onnxruntime-node');

const [graph, threadsArg, imagesArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2);
const images = Number(imagesArg ?? 16);
const sess = await ort.InferenceSession.create(graph, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
const data = new Set(['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep']);
const wpath = graph.replace(/\.onnx$/, '.safetensors');
const weights = {};
if (existsSync(wpath)) {
  const buf = readFileSync(wpath);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const [s, e] = v.data_offsets;
    const bytes = buf.subarray(8 + n + s, 8 + n + e);
    const arr = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    weights[k] = new ort.Tensor('float32', arr, v.shape);
  }
}
let L = 24, D = 128, P = 128;
for (const m of sess.inputMetadata) {
  if (m.name === 'encoder_hidden_states') { L = m.shape[1]; D = m.shape[2]; }
  if (m.name === 'pooled_projections') P = m.shape[1];
  if (data.has(m.name) || weights[m.name]) continue;
  const n = m.shape.reduce((a, b) => a * b, 1);
  const arr = new Float32Array(n);
  for (let i = 0; i < n; i++) arr[i] = (Math.random() - 0.5) * 0.1;
  weights[m.name] = new ort.Tensor('float32', arr, m.shape);
}
const B = 2 * images;
const rnd = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1; return a; };
const feeds = {
  ...weights,
  hidden_states: new ort.Tensor('float32', rnd(B * 3 * 32 * 32), [B, 3, 32, 32]),
  encoder_hidden_states: new ort.Tensor('float32', rnd(B * L * D), [B, L, D]),
  pooled_projections: new ort.Tensor('float32', rnd(B * P), [B, P]),
  timestep: new ort.Tensor('float32', new Float32Array(B).fill(500), [B]),
};
await sess.run(feeds); // warm-up
const times = [];
for (let rep = 0; rep < 3; rep++) {
  const t0 = performance.now();
  for (let s = 0; s < 10; s++) await sess.run(feeds);
  times.push(performance.now() - t0);
}
console.log(JSON.stringify({ graph, threads, images, batch: B, steps: 10, ms: times.map((t) => Math.round(t)), best_ms: Math.round(Math.min(...times)) }));
