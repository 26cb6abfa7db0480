// The worker's config: YAML or JSON, validated; every error names the path and the problem.
import { z } from 'zod';
import { PRECISIONS } from '../model/precision.ts';

const pluginEntry = z.union([
  z.string().min(1),
  z.object({
    /** A built-in plugin's name ... */
    name: z.string().min(1).optional(),
    /** ... or a module path (relative to the config file) exporting a plugin factory. */
    module: z.string().min(1).optional(),
    /** Export of the module; 'default' by default. */
    export: z.string().min(1).optional(),
    options: z.record(z.string(), z.unknown()).default({}),
  }).strict().refine((p) => (p.name === undefined) !== (p.module === undefined), { message: 'give exactly one of "name" or "module"' }),
]);

export const workerConfigSchema = z.object({
  /** Model folder (docs/model-folder.md); the embedded model when absent. */
  model: z.string().min(1).optional(),
  /** 'onnx' reads a model folder; plugins add others ('dummy'). */
  loadFormat: z.string().min(1).default('onnx'),
  /** Options of the load format (the dummy architecture, say). */
  loadOptions: z.record(z.string(), z.unknown()).default({}),
  device: z.enum(['cpu', 'cuda', 'webgpu']).default('cpu'),
  /** CUDA: the GPU's index (ONNX Runtime's device_id); 0 when absent. */
  deviceId: z.number().int().min(0).optional(),
  /**
   * Data parallel: one worker per entry ('cpu', 'cuda:0', 'cuda:1', ...), a generate call split
   * across them by samples (docs/fleet.md). Replaces `device` and `deviceId`.
   */
  devices: z.array(z.string().regex(/^(cpu|webgpu|cuda(:\d+)?)$/, "must be 'cpu', 'webgpu', 'cuda' or 'cuda:N'")).min(1).optional(),
  /** Data parallel on one `device` (cpu): this many workers. 1 by default. */
  dataParallelSize: z.number().int().positive().default(1),
  /**
   * How a data-parallel generate call is split: 'idle' across the workers that have nothing to do
   * (all of them when idle; whole, to the least loaded, when none is), so parts under load stay
   * full batches; 'all' across every worker whatever their load (lowest latency of one call).
   */
  dataParallelSplit: z.enum(['idle', 'all']).default('idle'),
  /**
   * The precision the model must run in (docs/gpu-design.md, "Half precision"). The folder decides
   * (its graphs take their parameters and compute in one dtype); a model of another precision is
   * refused at load. Absent: whatever the folder holds.
   */
  dtype: z.enum(PRECISIONS).optional(),
  /** CUDA: allow TF32 matmuls (faster, ~1e-2 off float32); strict float32 by default. */
  cudaTf32: z.boolean().default(false),
  /**
   * Where the weights live between runs (docs/gpu-design.md): 'session' makes them initializers of
   * the ONNX Runtime session (copied onto the device once; a weight update builds a new session
   * beside the serving one), 'inputs' feeds them on every run (used in place on the CPU).
   * 'auto': session on cuda, inputs elsewhere (session too for a model with bfloat16 parameters,
   * which the Node.js binding cannot feed as inputs).
   */
  weightResidency: z.enum(['auto', 'inputs', 'session']).default('auto'),
  /**
   * Session residency: sessions kept per component besides the serving one and those in use
   * (merged LoRA adapters), least recently used released first. Each holds a full copy of the
   * component's weights (on the device for CUDA).
   */
  spareSessions: z.number().int().min(0).default(1),
  /** ONNX Runtime intra-op threads; ONNX Runtime's default when absent. */
  threads: z.number().int().positive().optional(),
  /**
   * ONNX Runtime's pool threads spin between operators instead of sleeping: faster steps when each
   * worker has cores of its own (data parallel), cores taken from everything else while idle.
   */
  threadSpinning: z.boolean().default(false),
  maxBatchSize: z.number().int().positive().default(16),
  promptCacheSize: z.number().int().min(0).default(1024),
  defaults: z.object({
    steps: z.number().int().positive().optional(),
    guidanceScale: z.number().min(0).optional(),
    height: z.number().int().positive().optional(),
    width: z.number().int().positive().optional(),
  }).strict().default({}),
  /** Bounds of one generate call, checked before any work is spent (docs/reliability.md). */
  limits: z.object({
    /** Samples in one call, all requests together. */
    maxSamplesPerCall: z.number().int().positive().default(1024),
    /** Denoising steps of one request. */
    maxSteps: z.number().int().positive().default(1000),
    /** Image size in pixels; a model whose graph fixes the size bounds it further. */
    maxHeight: z.number().int().positive().default(4096),
    maxWidth: z.number().int().positive().default(4096),
    maxPixels: z.number().int().positive().default(4096 * 4096),
  }).strict().prefault({}),
  /** Plugins in order; absent means every built-in plugin. */
  plugins: z.array(pluginEntry).optional(),
  /** "path/to/module.ts#ExportName": classes whose methods become callable by name. */
  workerExtensionClasses: z.array(z.string().min(1)).default([]),
  /** Where inference runs: a worker thread (default) or the caller's thread (tests, tools). */
  executor: z.enum(['thread', 'inline']).default('thread'),
  /** How long aborted rollouts (sleep({ mode: 'abort' }), close()) get to stop before the call reports them stuck. */
  abortTimeoutMs: z.number().int().min(0).default(5000),
  /**
   * How long a call may wait for the inference thread to take it up (only synchronous code, or one
   * native step, holds it); past it the call is refused and never runs.
   */
  threadResponseTimeoutMs: z.number().int().positive().default(60_000),
  /**
   * Node's worker resourceLimits for the inference thread: past them the thread dies with
   * ERR_WORKER_OUT_OF_MEMORY and its calls reject with that error. Tensors live outside this heap.
   */
  threadResourceLimits: z.object({
    maxOldGenerationSizeMb: z.number().positive().optional(),
    maxYoungGenerationSizeMb: z.number().positive().optional(),
    codeRangeSizeMb: z.number().positive().optional(),
    stackSizeMb: z.number().positive().optional(),
  }).strict().optional(),
}).strict();

export type WorkerConfigInput = z.input<typeof workerConfigSchema>;
export type WorkerConfig = z.output<typeof workerConfigSchema> & {
  /** Folder that relative paths in the config are resolved against. */
  baseDir?: string;
};
export type PluginEntry = z.output<typeof pluginEntry>;
