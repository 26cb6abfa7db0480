// One bare ONNX Runtime loop of bench/fleet-ceiling.ts, in its own thread as a data-parallel worker
// is: the worker's transformer session (same graph, weights, session options), run back to back on
// one fixed batch, with nothing of the pipeline around it (no noise, scheduler, text encoder, IPC).
import { parentPort, workerData } from 'node:worker_threads';
import { loadModelFolder } from '../core/model/folder-loader.ts';
import { graphForDevice } from '../core/model/bf16-widen.ts';
import { OnnxComponent } from '../core/model/onnx-component.ts';
import { sessionOptions } from '../core/model/execution-provider.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import type { LoopSpec } from './fleet-ceiling.ts';

const { spec, control } = workerData as { spec: LoopSpec & { affinities?: string }; control: Int32Array };
const source = await loadModelFolder(spec.model);
const { graph, weights } = source.components.transformer;
const options = sessionOptions('cpu', spec.threads, undefined, { spinning: spec.spinning, affinities: spec.affinities });
const context = spec.residency === 'session' ? { current: () => weights, settled: async () => {}, spare: 0 } : undefined;
const transformer = new OnnxComponent('transformer', graphForDevice(graph, 'cpu'), 'cpu', options, context);
await transformer.open();

// The batch a worker's transformer sees: CFG doubles the rows.
const rows = spec.cfg ? 2 * spec.samples : spec.samples;
const { image, latent, text } = source.spec;
const filled = (shape: number[], value: (i: number) => number): HostTensor => {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = value(i);
  return { dtype: 'F32', shape, data };
};
const inputs = {
  hidden_states: filled([rows, latent.channels, image.height / latent.downscale, image.width / latent.downscale], (i) => Math.sin(i)),
  encoder_hidden_states: filled([rows, text.maxLength, text.hiddenSize], (i) => Math.cos(i) / 4),
  pooled_projections: filled([rows, text.pooledSize], (i) => Math.sin(3 * i) / 4),
  timestep: filled([rows], () => 500),
};
for (let i = 0; i < 2; i++) await transformer.run(inputs, weights); // warm up: first-run allocations

// Every loop starts together (control[0] set by the caller), runs until the common deadline.
parentPort!.postMessage({ kind: 'ready' });
Atomics.wait(control, 0, 0);
const start = performance.now();
const deadline = start + spec.seconds * 1000;
let runs = 0;
while (performance.now() < deadline) {
  await transformer.run(inputs, weights);
  runs++;
}
const seconds = (performance.now() - start) / 1000;
await transformer.release();
parentPort!.postMessage({ kind: 'done', runs, seconds, rows });
