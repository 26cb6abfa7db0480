// plugins/dummy-loader: loadFormat 'dummy' builds a runnable model of a given small architecture
// with seeded random weights and no files, for unit tests of pipelines and plugins.
import { definePlugin, f32, fillGaussian, fromFloat32, parseOrThrow, PRECISION_DTYPE, type ComponentName, type FloatDType, type HostTensor, type ModelSource, type ModelSpec, type TokenizerSpec, type WeightMap } from '../../core/public.ts';
import { decoderGraph, dummyArchSchema, textEncoderGraph, transformerGraph, type DummyArch, type ParamShapes } from './architecture.ts';

export const PLUGIN_NAME = 'dummy-loader';

const WORDS = ('a an the of on at in with and red green blue yellow purple orange white black gray pink ' +
  'circle square triangle star cross heart small large big tiny top bottom left right center middle ' +
  'background cat dog house tree car sky sea mountain flower photo painting of picture').split(' ');

export function dummyTokenizer(maxLength: number): TokenizerSpec {
  const vocab: Record<string, number> = { '<pad>': 0, '<unk>': 1, '<bos>': 2 };
  for (const w of WORDS) if (!(w in vocab)) vocab[w] = Object.keys(vocab).length;
  return { type: 'word-level', lowercase: true, maxLength, padId: 0, unkId: 1, bosId: 2, vocab };
}

/** One parameter's seeded values: N(0, 1/fan_in) for weights, N(0, 0.01) for biases; its own stream. */
export function seededParameter(name: string, shape: readonly number[], seed: number, stream: number): HostTensor & { data: Float32Array } {
  const t = f32(shape);
  fillGaussian(seed, stream, t.data);
  const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 100;
  const std = name.endsWith('.bias') ? 0.01 : 1 / Math.sqrt(fanIn);
  for (let i = 0; i < t.data.length; i++) t.data[i] *= std;
  return t;
}

/** Parameter name -> its seeded-stream number, per component (salt = component index + 1). */
function parameterStreams(params: ParamShapes, salt: number): Map<string, number> {
  return new Map([...params.keys()].map((name, k) => [name, salt * 10_000 + k]));
}

export interface DummyComponent {
  graph: Uint8Array;
  params: ParamShapes;
  /** Parameter name -> the seeded stream its values come from. */
  streams: Map<string, number>;
}

/** The dummy model's manifest, tokenizer and graphs: everything but the weights' values. */
export function dummyModelParts(arch: DummyArch): { spec: ModelSpec; tokenizer: TokenizerSpec; components: Partial<Record<ComponentName, DummyComponent>> } {
  if (arch.height % arch.downscale || arch.width % arch.downscale) {
    throw new Error(`dummy model: height and width must be multiples of downscale ${arch.downscale}`);
  }
  const tokenizer = dummyTokenizer(arch.maxLength);
  const vocab = Object.keys(tokenizer.vocab).length;
  const graphs: Partial<Record<ComponentName, { graph: Uint8Array; params: ParamShapes }>> = {
    text_encoder: textEncoderGraph(arch, vocab),
    transformer: transformerGraph(arch),
  };
  if (arch.downscale > 1) graphs.decoder = decoderGraph(arch);
  const components: Partial<Record<ComponentName, DummyComponent>> = {};
  Object.entries(graphs).forEach(([n, g], i) => { components[n as ComponentName] = { ...g, streams: parameterStreams(g.params, i + 1) }; });
  const spec: ModelSpec = {
    format: 'omni-worker-model/1',
    name: `dummy-${arch.seed}`,
    tokenizer: '(built in)',
    components: {
      text_encoder: { graph: '(built in)' },
      transformer: { graph: '(built in)' },
      ...(graphs.decoder ? { decoder: { graph: '(built in)' } } : {}),
    },
    image: { height: arch.height, width: arch.width },
    latent: { channels: arch.channels, downscale: arch.downscale },
    text: { maxLength: arch.maxLength, hiddenSize: arch.textDim, pooledSize: arch.textDim },
    scheduler: { shift: 3 },
    defaults: { steps: 4, guidanceScale: 4.5 },
  };
  return { spec, tokenizer, components };
}

/** A seeded parameter in the model's dtype: the float32 values rounded to nearest even, as PyTorch's .half() / .bfloat16(). */
export function seededParameterIn(arch: DummyArch, name: string, shape: readonly number[], stream: number): HostTensor {
  const t = seededParameter(name, shape, arch.seed, stream);
  if (arch.dtype === 'float32') return t;
  const dtype = PRECISION_DTYPE[arch.dtype] as FloatDType;
  return { dtype, shape: t.shape, data: fromFloat32(t.data, dtype) };
}

function seededWeights(c: DummyComponent, arch: DummyArch): WeightMap {
  const map = new Map<string, HostTensor>();
  for (const [name, stream] of c.streams) map.set(name, seededParameterIn(arch, name, c.params.get(name)!, stream));
  return map;
}

export function buildDummyModel(arch: DummyArch): ModelSource {
  const { spec, tokenizer, components: parts } = dummyModelParts(arch);
  const entries = Object.entries(parts) as [ComponentName, DummyComponent][];
  const weightsOf = () => Object.fromEntries(
    entries.map(([n, c]) => [n, seededWeights(c, arch)]),
  ) as Record<ComponentName, WeightMap>;
  const weights = weightsOf();
  // A loop, not a closure: a closure naming `weights` would share this scope's context with
  // reloadWeights and so pin the first weights for the worker's life (a level-2 sleep frees nothing).
  const components: Partial<Record<ComponentName, { graph: Uint8Array; weights: WeightMap }>> = {};
  for (const [n, c] of entries) components[n] = { graph: c.graph, weights: weights[n] };
  return { spec, tokenizer, components: components as ModelSource['components'], origin: `dummy:${JSON.stringify(arch)}`, reloadWeights: async () => weightsOf() };
}

export default definePlugin({
  name: PLUGIN_NAME,
  apply(api) {
    api.declare.loadFormat('dummy');
    api.hooks.loadModel.for('dummy').tapPromise(PLUGIN_NAME, async (req) => buildDummyModel(parseOrThrow(dummyArchSchema, req.options, 'dummy model', 'loadOptions')));
  },
});
