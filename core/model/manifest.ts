// model.json: the manifest of a model folder (docs/model-folder.md).
import { z } from 'zod';

export const COMPONENT_NAMES = ['text_encoder', 'transformer', 'decoder'] as const;
export type ComponentName = (typeof COMPONENT_NAMES)[number];

/** Graph inputs that carry data; every other graph input is a parameter fed by name. */
export const DATA_INPUTS: Record<ComponentName, readonly string[]> = {
  text_encoder: ['input_ids'],
  transformer: ['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep'],
  decoder: ['latent_sample'],
};

const componentFiles = z.object({ graph: z.string().min(1), weights: z.string().min(1).optional() }).strict();
const positiveInt = z.number().int().positive();

export const modelSpecSchema = z.object({
  format: z.literal('omni-worker-model/1'),
  name: z.string().min(1),
  tokenizer: z.string().min(1),
  components: z.object({
    text_encoder: componentFiles,
    transformer: componentFiles,
    decoder: componentFiles.optional(),
  }).strict(),
  image: z.object({ height: positiveInt, width: positiveInt }).strict(),
  latent: z.object({ channels: positiveInt, downscale: positiveInt }).strict(),
  text: z.object({ maxLength: positiveInt, hiddenSize: positiveInt, pooledSize: positiveInt }).strict(),
  scheduler: z.object({ shift: z.number().positive().default(3), sigmaMin: z.number().positive().max(1).optional() }).strict().default({ shift: 3 }),
  defaults: z.object({ steps: positiveInt.default(10), guidanceScale: z.number().min(0).default(4.5) }).strict().default({ steps: 10, guidanceScale: 4.5 }),
}).strict();

export type ModelSpec = z.infer<typeof modelSpecSchema>;

export const tokenizerSpecSchema = z.object({
  type: z.literal('word-level'),
  lowercase: z.boolean().default(true),
  maxLength: positiveInt,
  padId: z.number().int().min(0),
  unkId: z.number().int().min(0),
  bosId: z.number().int().min(0),
  vocab: z.record(z.string(), z.number().int().min(0)),
});

export type TokenizerSpec = z.infer<typeof tokenizerSpecSchema>;

