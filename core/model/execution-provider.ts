// Maps the config's device name to ONNX Runtime session options, and checks at worker start that a
// device's runtime is in place (CUDA: the provider libraries beside ONNX Runtime, and CUDA's own).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';

export type DeviceName = 'cpu' | 'cuda' | 'webgpu';

export interface ThreadOptions {
  /**
   * ONNX Runtime's pool threads busy-wait for the next parallel section instead of sleeping: no
   * wake-up per operator (a futex, an inter-processor interrupt in a virtual machine), but an idle
   * pool takes cores from the caller's thread, the trainer and other workers' sessions.
   */
  spinning?: boolean;
  /**
   * `session.intra_op_thread_affinities`: one group of 1-based logical processor ids per pool
   * thread (threads - 1 groups; the calling thread is not pinned), e.g. '2;3;4' for 4 threads.
   */
  affinities?: string;
}

export function sessionOptions(device: DeviceName, threads: number | undefined, deviceId?: number, thread: ThreadOptions = {}): InferenceSession.SessionOptions {
  const spin = thread.spinning ? '1' : '0';
  const options: InferenceSession.SessionOptions = {
    // One GPU of several (data parallel): ONNX Runtime's device_id.
    executionProviders: [device === 'cuda' && deviceId !== undefined ? { name: 'cuda', deviceId } : device],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3, // errors only: ORT's warnings about graph rewrites are noise to users
    // No busy-waiting between runs by default (ThreadOptions.spinning says why).
    extra: {
      session: {
        intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin },
        ...(thread.affinities ? { intra_op_thread_affinities: thread.affinities } : {}),
      },
    },
  };
  if (threads !== undefined) {
    options.intraOpNumThreads = threads;
    options.interOpNumThreads = 1;
  }
  return options;
}

/** The command that installs the CUDA provider; every CUDA error names it. */
export const SETUP_CUDA = 'npx omni-worker setup cuda';

/** ONNX Runtime's CUDA provider, as it must lie beside libonnxruntime.so.1 (the provider bridge loads it from there). */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'] as const;

/** Where onnxruntime-node keeps its native libraries for this platform. */
export function onnxRuntimeBinDir(): string {
  const root = dirname(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')));
  return join(root, 'bin', 'napi-v6', process.platform, process.arch);
}

/** `ldd` of a shared library: its output, or undefined when ldd cannot tell (no ldd, not an ELF file). */
export function lddOutput(path: string): string | undefined {
  try {
    return execFileSync('ldd', [path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    return undefined;
  }
}

/**
 * What keeps the CUDA provider from loading, or undefined when nothing is seen missing: the provider
 * files, then the libraries they need (ldd's "not found"). Checked before any work so that the error
 * names the fix instead of ONNX Runtime's bare dlopen message.
 */
export function cudaRuntimeProblem(binDir = onnxRuntimeBinDir(), ldd: (path: string) => string | undefined = lddOutput): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `ONNX Runtime's CUDA provider is available here for Linux x64 only (this is ${process.platform} ${process.arch})`;
  }
  const absent = CUDA_PROVIDER_FILES.filter((f) => !existsSync(join(binDir, f)));
  if (absent.length) return `ONNX Runtime's CUDA provider is not installed (${absent.join(', ')} missing in ${binDir}): run \`${SETUP_CUDA}\``;
  const missing = [...(ldd(join(binDir, CUDA_PROVIDER_FILES[0])) ?? '').matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]);
  if (!missing.length) return undefined;
  const driver = missing.includes('libcuda.so.1') ? ' (libcuda.so.1 is the NVIDIA driver: is there a GPU and its driver?)' : '';
  return `the CUDA provider cannot find ${missing.join(', ')}${driver}: install CUDA 13 and cuDNN 9 and put their library folders on LD_LIBRARY_PATH ` +
    `(for example /usr/local/cuda-13.0/targets/x86_64-linux/lib); see the README's "GPU" section (\`${SETUP_CUDA}\` checks again)`;
}

/**
 * Process-wide settings a device needs before its first session, and a check that its runtime is
 * in place (before the model is read). CUDA: strict float32 matmuls
 * (NVIDIA_TF32_OVERRIDE=0 for cuBLAS and cuDNN), since ONNX Runtime's CUDA provider allows TF32
 * by default and the JS binding cannot turn it off: with TF32 a rollout drifts ~1e-2 from the CPU
 * and the reference, and the trainer's recomputed log-probs would not match. Must run on the
 * main thread (a worker thread's process.env is its own copy); a value the user set wins.
 * `cudaBinDir`: where to look for the provider (tests).
 */
export function prepareDeviceEnvironment(device: DeviceName, allowTf32: boolean, cudaBinDir?: string): void {
  if (device !== 'cuda') return;
  const problem = cudaRuntimeProblem(cudaBinDir);
  if (problem) throw new Error(`device 'cuda': ${problem}`);
  if (process.env.NVIDIA_TF32_OVERRIDE === undefined && !allowTf32) process.env.NVIDIA_TF32_OVERRIDE = '0';
}

/** Rewords a session-creation failure so that the provider is named. */
export function providerError(device: DeviceName, component: string, cause: unknown): Error {
  const why = cause instanceof Error ? cause.message : String(cause);
  // A kernel missing for a node's dtype (bfloat16 mostly) is the graph's precision, not the install.
  const hint = /Could not find an implementation for/.test(why)
    ? ` (the provider has no kernel for a node in its dtype: half-precision kernels are few, docs/gpu-design.md "Half precision" lists them)`
    : device === 'cpu' ? '' : ` (execution provider '${device}' could not be used: is its runtime installed?${device === 'cuda' ? ` run \`${SETUP_CUDA}\`` : ''})`;
  return new Error(`cannot create the ${component} session on '${device}'${hint}: ${why}`, { cause });
}
