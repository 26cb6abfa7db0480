// The dummy model's architecture: a small text encoder, a one-cross-attention-per-block
// denoiser over latent pixels, and an optional 1x1-conv + depth-to-space decoder.
// Every parameter is a graph input named as a PyTorch state dict would name it.
// In float16 everything computes in float16; in bfloat16 the text encoder and the transformer
// compute in bfloat16 (ONNX Runtime's CUDA provider has bfloat16 MatMul, Add, Mul, Div, Tanh and
// Softmax), the pooled mean and the decoder in float32 (no bfloat16 ReduceMean or DepthToSpace
// kernels, and ONNX's Conv takes no bfloat16 before opset 22).
import { z } from 'zod';
import { PRECISIONS, type Precision } from '../../core/public.ts';
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
  /** Parameters' dtype and the precision the graphs compute in (data in and out stay float32). */
  dtype: z.enum(PRECISIONS).default('float32'),
}).strict().refine((a) => a.hidden % a.heads === 0, { message: 'hidden must be a multiple of heads', path: ['heads'] });

export type DummyArch = z.output<typeof dummyArchSchema>;

/** Parameter name -> shape, per component. */
export type ParamShapes = Map<string, number[]>;

export function textEncoderGraph(a: DummyArch, vocab: number): { graph: Uint8Array; params: ParamShapes } {
  const g = new GraphBuilder('text_encoder', a.dtype);
  const params: ParamShapes = new Map([
    ['embed_tokens.weight', [vocab, a.textDim]],
    ['proj.weight', [a.textDim, a.textDim]],
    ['proj.bias', [a.textDim]],
  ]);
  const ids = g.input('input_ids', 'int64', ['batch', a.maxLength]);
  for (const [n, s] of params) g.param(n, s);
  const e = g.op('Gather', ['embed_tokens.weight', ids], { axis: 0 });
  const h = g.outputOp('Tanh', [g.linear(e, 'proj')], {}, 'last_hidden_state', ['batch', a.maxLength, a.textDim]);
  g.outputOp('ReduceMean', [h], { axes: [1], keepdims: 0 }, 'pooler_output', ['batch', a.textDim], 'float32');
  return { graph: g.encode(), params };
}

export function transformerGraph(a: DummyArch): { graph: Uint8Array; params: ParamShapes } {
  const g = new GraphBuilder('transformer', a.dtype);
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
  const text = g.fromFloat32(g.input('encoder_hidden_states', 'float', ['batch', a.maxLength, D]));
  const pooled = g.fromFloat32(g.input('pooled_projections', 'float', ['batch', D]));
  const t = g.input('timestep', 'float', ['batch']);
  for (const [n, s] of params) g.param(n, s);

  // sigma = timestep / 1000 in float32 (a timestep near 1000 has few bits to spare in half).
  const t1 = g.fromFloat32(g.op('Unsqueeze', [g.op('Div', [t, g.constFloat(1000, 'float32')]), g.constInt64([1])]));
  const cond = g.op('Add', [g.op('Tanh', [g.linear(t1, 'time_embed')]), g.linear(pooled, 'pooled_embed')]);
  const tokens = g.op('Transpose', [g.op('Reshape', [g.fromFloat32(x), g.constInt64([0, C, -1])])], { perm: [0, 2, 1] });
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
  g.outputOp('Reshape', [out, g.op('Shape', [x])], {}, 'out_hidden_states', ['batch', C, h, w]);
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
  const g = new GraphBuilder('decoder', a.dtype);
  const s = a.downscale;
  const compute: Precision = a.dtype === 'bfloat16' ? 'float32' : a.dtype;
  const params: ParamShapes = new Map([['conv.weight', [3 * s * s, a.channels, 1, 1]], ['conv.bias', [3 * s * s]]]);
  const z = g.cast(g.input('latent_sample', 'float', ['batch', a.channels, a.height / s, a.width / s]), 'float32', compute);
  for (const [n, sh] of params) g.param(n, sh);
  const [wt, b] = [...params.keys()].map((n) => g.cast(n, a.dtype, compute));
  const y = g.op('Conv', [z, wt, b], { kernel_shape: [1, 1] });
  g.outputOp('Tanh', [g.op('DepthToSpace', [y], { blocksize: s })], {}, 'sample', ['batch', 3, a.height, a.width], compute);
  return { graph: g.encode(), params };
}
