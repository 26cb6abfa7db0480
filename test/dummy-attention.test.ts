import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { dummyArchSchema, transformerGraph } from '../plugins/dummy-loader/architecture.ts';
import { seededParameter } from '../plugins/dummy-loader/index.ts';
import { fillGaussian } from '../core/pipeline/seeded-noise.ts';

type M = number[][];
const linear = (x: M, w: Float32Array, out: number, bias?: Float32Array): M =>
  x.map((row) => Array.from({ length: out }, (_, o) => row.reduce((s, v, i) => s + v * w[o * row.length + i], bias ? bias[o] : 0)));
const add = (a: M, b: M): M => a.map((r, i) => r.map((v, j) => v + b[i][j]));

/** The dummy transformer's forward pass for one sample, written out plainly (float64). */
function reference(W: Map<string, Float32Array>, a: { hidden: number; heads: number; layers: number; channels: number },
  x: Float32Array, hw: number, text: M, pooled: number[], t: number): Float32Array {
  const H = a.hidden, C = a.channels, d = H / a.heads;
  const cond = linear([[t / 1000]], W.get('time_embed.weight')!, H, W.get('time_embed.bias')!)[0].map(Math.tanh)
    .map((v, i) => v + linear([pooled], W.get('pooled_embed.weight')!, H, W.get('pooled_embed.bias')!)[0][i]);
  const tokens: M = Array.from({ length: hw }, (_, p) => Array.from({ length: C }, (_, c) => x[c * hw + p]));
  let hs = linear(tokens, W.get('proj_in.weight')!, H, W.get('proj_in.bias')!).map((r) => r.map((v, i) => v + cond[i]));
  for (let l = 0; l < a.layers; l++) {
    const p = `blocks.${l}`;
    const q = linear(hs, W.get(`${p}.attn.to_q.weight`)!, H);
    const k = linear(text, W.get(`${p}.attn.to_k.weight`)!, H);
    const v = linear(text, W.get(`${p}.attn.to_v.weight`)!, H);
    const attn: M = q.map((qi) => {
      const out = new Array<number>(H).fill(0);
      for (let h = 0; h < a.heads; h++) {
        const s = k.map((kj) => { let acc = 0; for (let e = h * d; e < (h + 1) * d; e++) acc += qi[e] * kj[e]; return acc / Math.sqrt(d); });
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const z = e.reduce((u, w) => u + w, 0);
        e.forEach((w, j) => { for (let c = h * d; c < (h + 1) * d; c++) out[c] += (w / z) * v[j][c]; });
      }
      return out;
    });
    hs = add(hs, linear(attn, W.get(`${p}.attn.to_out.weight`)!, H));
    const f1 = linear(hs, W.get(`${p}.ff.fc1.weight`)!, 2 * H, W.get(`${p}.ff.fc1.bias`)!).map((r) => r.map(Math.tanh));
    hs = add(hs, linear(f1, W.get(`${p}.ff.fc2.weight`)!, H, W.get(`${p}.ff.fc2.bias`)!));
  }
  const out = linear(hs, W.get('proj_out.weight')!, C, W.get('proj_out.bias')!);
  return Float32Array.from({ length: C * hw }, (_, i) => out[i % hw][Math.floor(i / hw)]);
}

describe('dummy transformer attention', () => {
  it.each([1, 2, 4])('with %i head(s) matches a plain forward pass', async (heads) => {
    const a = dummyArchSchema.parse({ hidden: 8, heads, layers: 2, height: 8, width: 8, downscale: 2, channels: 3, textDim: 4, maxLength: 3 });
    const { graph, params } = transformerGraph(a);
    const W = new Map<string, Float32Array>();
    let k = 0;
    for (const [n, s] of params) W.set(n, seededParameter(n, s, 5, k++).data);
    const hw = 16, B = 2;
    const rand = (n: number, stream: number) => { const v = new Float32Array(n); fillGaussian(9, stream, v); return v; };
    const x = rand(B * 3 * hw, 1), text = rand(B * 3 * 4, 2), pooled = rand(B * 4, 3), t = Float32Array.of(250, 900);
    const session = await ort.InferenceSession.create(graph);
    const feeds: Record<string, ort.Tensor> = {
      hidden_states: new ort.Tensor('float32', x, [B, 3, 4, 4]),
      encoder_hidden_states: new ort.Tensor('float32', text, [B, 3, 4]),
      pooled_projections: new ort.Tensor('float32', pooled, [B, 4]),
      timestep: new ort.Tensor('float32', t, [B]),
    };
    for (const [n, s] of params) feeds[n] = new ort.Tensor('float32', W.get(n)!, s);
    const got = (await session.run(feeds)).out_hidden_states.data as Float32Array;
    await session.release();
    for (let b = 0; b < B; b++) {
      const textRows: M = Array.from({ length: 3 }, (_, j) => Array.from(text.subarray((b * 3 + j) * 4, (b * 3 + j + 1) * 4)));
      const want = reference(W, { ...a }, x.subarray(b * 3 * hw, (b + 1) * 3 * hw), hw, textRows, Array.from(pooled.subarray(b * 4, b * 4 + 4)), t[b]);
      const row = got.subarray(b * 3 * hw, (b + 1) * 3 * hw);
      for (let i = 0; i < want.length; i++) expect(row[i]).toBeCloseTo(want[i], 4);
    }
  });
});
