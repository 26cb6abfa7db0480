// Load-time model checks: a model whose weights, tokenizer or manifest disagree with its graphs
// is refused at load with the tensor or field named, not at the first generate with a raw ONNX
// Runtime message; and a model refused leaves no schema behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkModel } from '../core/model/model-checks.ts';
import { loadModelFolder } from '../core/model/folder-loader.ts';
import type { ModelSource } from '../core/model/source.ts';
import { definePlugin } from '../core/plugin.ts';
import type { HostTensor } from '../core/tensors/tensor.ts';
import { parseSafetensors } from '../core/tensors/safetensors.ts';
import { f32 } from '../core/tensors/tensor.ts';
import { buildDummyModel } from '../plugins/dummy-loader/index.ts';
import { dummyArchSchema } from '../plugins/dummy-loader/architecture.ts';
import { inlineWorker, SMALL_DUMMY } from './support/inline-worker.ts';

const dummy = (): ModelSource => buildDummyModel(dummyArchSchema.parse(SMALL_DUMMY));

/** The dummy model with one transformer weight replaced. */
function withTransformerWeight(name: string, t: HostTensor): ModelSource {
  const source = dummy();
  source.components.transformer.weights = new Map([...source.components.transformer.weights, [name, t]]);
  return source;
}

describe('model checks at load', () => {
  it('accepts the dummy model and reports the image size its graphs fix', () => {
    expect(checkModel(dummy())).toEqual({ fixedHeight: 16, fixedWidth: 16 });
  });

  it('refuses weights of the wrong shape, dtype, with non-finite values, missing or unused, naming the weight', () => {
    expect(() => checkModel(withTransformerWeight('proj_in.weight', f32([32, 5]))))
      .toThrow(/transformer: weight 'proj_in.weight' has shape \[32, 5\], the graph takes \[32, 4\]/);
    expect(() => checkModel(withTransformerWeight('proj_in.weight', { dtype: 'F16', shape: [32, 4], data: new Uint16Array(128) })))
      .toThrow(/transformer: weight 'proj_in.weight' is F16, the graph takes F32/);
    const nan = f32([32, 4]);
    nan.data[37] = NaN;
    expect(() => checkModel(withTransformerWeight('proj_in.weight', nan))).toThrow(/transformer: weight 'proj_in.weight' holds NaN at \[9, 1\]/);
    const inf = f32([32]);
    inf.data[3] = -Infinity;
    expect(() => checkModel(withTransformerWeight('proj_in.bias', inf))).toThrow(/weight 'proj_in.bias' holds -Infinity at \[3\]/);
    const missing = dummy();
    missing.components.transformer.weights = new Map([...missing.components.transformer.weights].filter(([n]) => n !== 'proj_out.bias'));
    expect(() => checkModel(missing)).toThrow(/transformer: the weights lack 'proj_out.bias'/);
    expect(() => checkModel(withTransformerWeight('proj_in.wieght', f32([32, 4]))))
      .toThrow(/transformer: the weights hold 1 tensor\(s\) the graph takes no input for: 'proj_in.wieght'/);
  });

  it('refuses a tokenizer or manifest whose sizes the graphs do not take', () => {
    const longer = dummy();
    longer.tokenizer = { ...longer.tokenizer, maxLength: 12 };
    longer.spec = { ...longer.spec, text: { ...longer.spec.text, maxLength: 12 } };
    expect(() => checkModel(longer)).toThrow(/the tokenizer maxLength is 12, but the text_encoder graph's input_ids takes 8 on axis 1/);
    const mismatch = dummy();
    mismatch.tokenizer = { ...mismatch.tokenizer, maxLength: 12 };
    expect(() => checkModel(mismatch)).toThrow(/model.json text.maxLength is 8, the tokenizer's maxLength 12/);
    const image = dummy();
    image.spec = { ...image.spec, image: { height: 32, width: 16 } };
    expect(() => checkModel(image)).toThrow(/model.json image height is 32, but the transformer graph's hidden_states fixes 8 latent rows x downscale 2 = 16/);
    const hidden = dummy();
    hidden.spec = { ...hidden.spec, text: { ...hidden.spec.text, hiddenSize: 64 } };
    expect(() => checkModel(hidden)).toThrow(/model.json text.hiddenSize is 64, but the transformer graph's encoder_hidden_states takes 16 on axis 2/);
  });

  it('refuses token ids beyond the embedding table', () => {
    const source = dummy();
    const rows = source.components.text_encoder.weights.get('embed_tokens.weight')!.shape[0];
    source.tokenizer = { ...source.tokenizer, vocab: { ...source.tokenizer.vocab, zebra: rows + 3 } };
    expect(() => checkModel(source)).toThrow(new RegExp(`ids beyond the text encoder's ${rows}-row embedding 'embed_tokens.weight': zebra = ${rows + 3}`));
  });

  describe('in a worker', () => {
    const tampered = definePlugin({
      name: 'tampered-loader',
      apply(api) {
        api.declare.loadFormat('tampered');
        api.hooks.loadModel.for('tampered').tapPromise('tampered-loader', async () => withTransformerWeight('proj_in.weight', f32([32, 5])));
      },
    });

    it('refuses the model at load, so a wrong shape never becomes the schema of later updates', async () => {
      await expect(inlineWorker({ loadFormat: 'tampered' }, { tampered })).rejects.toThrow(/does not fit its graphs: transformer: weight 'proj_in.weight' has shape \[32, 5\]/);
      // The correct model loads, and a correct update of that weight applies.
      const w = await inlineWorker();
      try {
        const update = f32([32, 4]).data.fill(0.01);
        const r = await w.executeMethod('loadWeights', { component: 'transformer', source: { 'proj_in.weight': f32([32, 4], update) } }) as { tensors: number };
        expect(r.tensors).toBe(1);
        const bad = f32([32, 4]);
        bad.data[0] = NaN;
        await expect(w.executeMethod('loadWeights', { component: 'transformer', source: { 'proj_in.weight': bad } })).rejects.toThrow(/nothing applied: 'proj_in.weight' holds NaN at \[0, 0\]/);
      } finally {
        await w.close();
      }
    });
  });

  it('refuses a LoRA adapter holding NaN, naming the module', async () => {
    const folder = new URL('./fixtures/lora/attn-r4/', import.meta.url);
    const config = JSON.parse(await readFile(new URL('adapter_config.json', folder), 'utf8'));
    const file = parseSafetensors(await readFile(new URL('adapter_model.safetensors', folder)));
    const tensors = Object.fromEntries(file.names.map((n) => [n, file.get(n)]));
    const key = file.names.find((n) => n.endsWith('lora_B.weight'))!;
    const t = tensors[key];
    const data = new Float32Array(t.data as Float32Array);
    data[1] = NaN;
    tensors[key] = { ...t, data };
    const w = await inlineWorker();
    try {
      const module = key.slice('base_model.model.'.length, -'.lora_B.weight'.length);
      await expect(w.executeMethod('addLora', { name: 'nan', config, tensors })).rejects.toThrow(`adapter 'nan': ${module}.lora_B holds NaN at [0, 1]`);
      expect((await w.executeMethod('listLoras') as { adapters: unknown[] }).adapters).toEqual([]);
    } finally {
      await w.close();
    }
  });

  describe('model.json', () => {
    let dir: string;
    beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'omni-manifest-')); });
    afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

    it('refuses unknown keys (a misspelt "defaults" is not ignored)', async () => {
      const manifest = JSON.parse(await readFile(new URL('../models/shapes-dit/model.json', import.meta.url), 'utf8'));
      const { defaults, ...rest } = manifest;
      await writeFile(join(dir, 'model.json'), JSON.stringify({ ...rest, defualts: defaults }));
      await expect(loadModelFolder(dir)).rejects.toThrow(/invalid model manifest .*model.json: \(root\): Unrecognized key: "defualts"/);
    });
  });
});
