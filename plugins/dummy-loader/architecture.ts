// The dummy model's architecture: a small text encoder, a one-cross-attention-per-block
// denoiser over latent pixels, and an optional 1x1-conv + depth-to-space decoder.
// Every parameter is a graph input named as a PyTorch state dict would name it.
import { z } from 'zod';
import { GraphBuilder } from './onnx-builder.ts';

export const dummyArchSchema = z.object({
  seed: z.number().int().min(0).default(0),
  height: z.number().int().positive().default(16),
  width: z.number().int().positive().default(16),
  channels: z.number().int().positive().default(4),
  /** > 1 adds a decoder that upsamples latents by this factor. */
  downscale: z.number().int().positive().default(2),
  hidden: z.number().int().positive().default(32),
  layers: z.number().int().positive().default(2),
  /** Attention heads; hidden must be a multiple. */
  heads: z.number().int().positive().default(1),
  textDim: z.number().int().positive().default(16),
  maxLength: z.number().int().min(2).default(8),
}).strict().refine((a) => a.hidden % a.heads === 0, { message: 'hidden must be a multiple of heads', path: ['heads'] });

export type DummyArch = z.output<typeof dummyArchSchema>;

/** Parameter name -> shape, per component. */
export type ParamShapes = Map<string, number[]>;

export function textEncoderGraph(a: DummyArch, vocab: number): { graph: Uint8Array; params: ParamShapes } {
  const g = new GraphBuilder('text_encoder');
  const params: ParamShapes = new Map([
    ['embed_tokens.weight', [vocab, a.textDim]],
    ['proj.weight', [a.textDim, a.textDim]],
    ['proj.bias', [a.textDim]],
  ]);
  const ids = g.input('input_ids', 'int64', ['batch', a.maxLength]);
  for (const [n, s] of params) g.input(n, 'float', s);
  const e = g.op('Gather', ['embed_tokens.weight', ids], { axis: 0 });
  const h = g.op('Tanh', [g.linear(e, 'proj')], {}, 'last_hidden_state');
  g.op('ReduceMean', [h], { axes: [1], keepdims: 0 }, 'pooler_output');
  g.output('last_hidden_state', ['batch', a.maxLength, a.textDim]);
  g.output('pooler_output', ['batch', a.textDim]);
  return { graph: g.encode(), params };
}

export function transformerGraph(a: DummyArch): { graph: Uint8Array; params: ParamShapes } {
  const g = new GraphBuilder('transformer');
  const H = a.hidden, C = a.channels, D = a.textDim;
  const h = a.height / a.downscale, w = a.width / a.downscale;
  const params: ParamShapes = new Map([
    ['proj_in.weight', [H, C]], ['proj_in.bias', [H]],
    ['time_embed.weight', [H, 1]], ['time_embed.bias', [H]],
    ['pooled_embed.weight', [H, D]], ['pooled_embed.bias', [H]],
  ]);
  for (let i = 0; i < a.layers; i++) {
    const p = `blocks.${i}`;
    for (const m of ['to_q', 'to_out']) params.set(`${p}.attn.${m}.weight`, [H, H]);
    for (const m of ['to_k', 'to_v']) params.set(`${p}.attn.${m}.weight`, [H, D]);
    params.set(`${p}.ff.fc1.weight`, [2 * H, H]).set(`${p}.ff.fc1.bias`, [2 * H]);
    params.set(`${p}.ff.fc2.weight`, [H, 2 * H]).set(`${p}.ff.fc2.bias`, [H]);
  }
  params.set('proj_out.weight', [C, H]).set('proj_out.bias', [C]);

  const x = g.input('hidden_states', 'float', ['batch', C, h, w]);
  const text = g.input('encoder_hidden_states', 'float', ['batch', a.maxLength, D]);
  const pooled = g.input('pooled_projections', 'float', ['batch', D]);
  const t = g.input('timestep', 'float', ['batch']);
  for (const [n, s] of params) g.input(n, 'float', s);

  const t1 = g.op('Unsqueeze', [g.op('Div', [t, g.constFloat(1000)]), g.constInt64([1])]);
  const cond = g.op('Add', [g.op('Tanh', [g.linear(t1, 'time_embed')]), g.linear(pooled, 'pooled_embed')]);
  const tokens = g.op('Transpose', [g.op('Reshape', [x, g.constInt64([0, C, -1])])], { perm: [0, 2, 1] });
  let hs = g.op('Add', [g.linear(tokens, 'proj_in'), g.op('Unsqueeze', [cond, g.constInt64([1])])]);
  const scale = g.constFloat(1 / Math.sqrt(H / a.heads));
  for (let i = 0; i < a.layers; i++) {
    const p = `blocks.${i}`;
    const q = g.linear(hs, `${p}.attn.to_q`, false);
    const k = g.linear(text, `${p}.attn.to_k`, false);
    const v = g.linear(text, `${p}.attn.to_v`, false);
    const attn = a.heads === 1 ? attention(g, q, k, v, scale) : multiHeadAttention(g, q, k, v, scale, a.heads, H);
    hs = g.op('Add', [hs, g.linear(attn, `${p}.attn.to_out`, false)]);
    const ff = g.linear(g.op('Tanh', [g.linear(hs, `${p}.ff.fc1`)]), `${p}.ff.fc2`);
    hs = g.op('Add', [hs, ff]);
  }
  const out = g.op('Transpose', [g.linear(hs, 'proj_out')], { perm: [0, 2, 1] });
  g.op('Reshape', [out, g.op('Shape', [x])], {}, 'out_hidden_states');
  g.output('out_hidden_states', ['batch', C, h, w]);
  return { graph: g.encode(), params };
}

/** softmax(q k^T * scale) v over [B, tokens, H]. */
function attention(g: GraphBuilder, q: string, k: string, v: string, scale: string): string {
  const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 2, 1] })]), scale]);
  return g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
}

/** The same per head: [B, T, H] -> [B, heads, T, H / heads], attention, and back. */
function multiHeadAttention(g: GraphBuilder, q: string, k: string, v: string, scale: string, heads: number, H: number): string {
  const split = g.constInt64([0, -1, heads, H / heads]);
  const toHeads = (x: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [x, split])], { perm });
  const scores = g.op('Mul', [g.op('MatMul', [toHeads(q, [0, 2, 1, 3]), toHeads(k, [0, 2, 3, 1])]), scale]);
  const out = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), toHeads(v, [0, 2, 1, 3])]);
  return g.op('Reshape', [g.op('Transpose', [out], { perm: [0, 2, 1, 3] }), g.constInt64([0, -1, H])]);
}

export function decoderGraph(a: DummyArch): { graph: Uint8Array; params: ParamShapes } {
  const g = new GraphBuilder('decoder');
  const s = a.downscale;
  const params: ParamShapes = new Map([['conv.weight', [3 * s * s, a.channels, 1, 1]], ['conv.bias', [3 * s * s]]]);
  const z = g.input('latent_sample', 'float', ['batch', a.channels, a.height / s, a.width / s]);
  for (const [n, sh] of params) g.input(n, 'float', sh);
  const y = g.op('Conv', [z, 'conv.weight', 'conv.bias'], { kernel_shape: [1, 1] });
  g.op('Tanh', [g.op('DepthToSpace', [y], { blocksize: s })], {}, 'sample');
  g.output('sample', ['batch', 3, a.height, a.width]);
  return { graph: g.encode(), params };
}
