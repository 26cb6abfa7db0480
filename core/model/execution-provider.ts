// Maps the config's device name to ONNX Runtime session options.
import type { InferenceSession } from 'onnxruntime-node';

export type DeviceName = 'cpu' | 'cuda' | 'webgpu';

export function sessionOptions(device: DeviceName, threads: number | undefined): InferenceSession.SessionOptions {
  const options: InferenceSession.SessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3, // errors only: ORT's warnings about graph rewrites are noise to users
    // No busy-waiting between runs: idle ONNX Runtime threads would otherwise spin and take cores
    // from the caller's thread, the trainer and other workers' sessions.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  if (threads !== undefined) {
    options.intraOpNumThreads = threads;
    options.interOpNumThreads = 1;
  }
  return options;
}

/**
 * Process-wide settings a device needs before its first session. CUDA: strict float32 matmuls
 * (NVIDIA_TF32_OVERRIDE=0 for cuBLAS and cuDNN), since ONNX Runtime's CUDA provider allows TF32
 * by default and the JS binding cannot turn it off: with TF32 a rollout drifts ~1e-2 from the CPU
 * and the reference, and the trainer's recomputed log-probs would not match. Must run on the
 * main thread (a worker thread's process.env is its own copy); a value the user set wins.
 */
export function prepareDeviceEnvironment(device: DeviceName, allowTf32: boolean): void {
  if (device === 'cuda' && process.env.NVIDIA_TF32_OVERRIDE === undefined && !allowTf32) {
    process.env.NVIDIA_TF32_OVERRIDE = '0';
  }
}

/** Rewords a session-creation failure so that the provider is named. */
export function providerError(device: DeviceName, component: string, cause: unknown): Error {
  const why = cause instanceof Error ? cause.message : String(cause);
  const hint = device === 'cpu' ? '' : ` (execution provider '${device}' could not be used: is its runtime installed? see ../shared/device/README.md)`;
  return new Error(`cannot create the ${component} session on '${device}'${hint}: ${why}`, { cause });
}
