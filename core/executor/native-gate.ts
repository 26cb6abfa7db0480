// ONNX Runtime's Node binding aborts the whole process ("terminate called after throwing an
// instance of 'Napi::Error'", exit 134) when a thread is stopped (terminate(), or process.exit()
// on the caller's side) while one of its native calls returns: the binding cannot throw into a
// stopping thread and C++ terminates. The gate is shared memory between the two sides: the
// inference thread counts its native calls and refuses new ones once the gate is shut; the owner
// shuts it and waits until the count is zero before the thread is stopped.
const SHUT = 0;
const ACTIVE = 1;

let threadSide: Int32Array | undefined;

/** In the inference thread: guard native calls with the owner's gate. */
export function useNativeGate(buffer: SharedArrayBuffer): void {
  threadSide = new Int32Array(buffer);
}

function leave(flags: Int32Array): void {
  Atomics.sub(flags, ACTIVE, 1);
  Atomics.notify(flags, ACTIVE);
}

/**
 * Runs a native ONNX Runtime call (session create, run, release) inside the gate. Once the gate is
 * shut it throws instead of entering native code. Without a gate (inline executor) it just runs.
 */
export async function nativeCall<T>(call: () => Promise<T>): Promise<T> {
  const flags = threadSide;
  if (!flags) return call();
  Atomics.add(flags, ACTIVE, 1); // counted before the check: the owner sees it, or we see the shut gate
  if (Atomics.load(flags, SHUT)) {
    leave(flags);
    throw new Error('the worker is closed');
  }
  try {
    return await call();
  } finally {
    leave(flags);
  }
}

// Node 20 has it; TypeScript's lib declares it from es2024 on.
interface AtomicsWaitAsync {
  waitAsync(a: Int32Array, index: number, value: number, timeout: number): { async: boolean; value: Promise<string> | string };
}

/** The owner's side (the caller's thread). */
export class NativeGate {
  readonly buffer = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  private readonly flags = new Int32Array(this.buffer);

  get active(): number {
    return Atomics.load(this.flags, ACTIVE);
  }

  /** Shuts the gate and blocks this thread until no native call runs; false on timeout. For 'exit' handlers. */
  shutSync(timeoutMs: number): boolean {
    Atomics.store(this.flags, SHUT, 1);
    const deadline = Date.now() + timeoutMs;
    for (let n = this.active; n !== 0; n = this.active) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.flags, ACTIVE, n, left);
    }
    return true;
  }

  /** Shuts the gate and waits (without blocking) until no native call runs; false on timeout. */
  async shut(timeoutMs: number): Promise<boolean> {
    Atomics.store(this.flags, SHUT, 1);
    const deadline = Date.now() + timeoutMs;
    for (let n = this.active; n !== 0; n = this.active) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.flags, ACTIVE, n, left);
      if (w.async) await w.value;
    }
    return true;
  }
}

// process.exit() (or an uncaught exception) on the caller's side stops every inference thread
// right after the 'exit' event: each live gate is shut there, waiting for native calls to return.
const EXIT_WAIT_MS = 10_000;
const live = new Set<NativeGate>();
let exitListener = false;

export function guardProcessExit(gate: NativeGate): void {
  live.add(gate);
  if (exitListener) return;
  exitListener = true;
  process.on('exit', () => {
    for (const g of live) g.shutSync(EXIT_WAIT_MS);
  });
}

export function unguardProcessExit(gate: NativeGate): void {
  live.delete(gate);
}
