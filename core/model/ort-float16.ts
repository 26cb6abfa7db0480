// onnxruntime-node 1.29.0 on Node.js 24 and later, where the Float16Array global exists:
// onnxruntime-common then wraps float16 data in a Float16Array, and the native binding reads a
// Float16Array as empty ("not enough space: expected N, got 0"), so float16 graph inputs fail.
// onnxruntime-common picks its float16 array type once, at the first Tensor made in a realm (each
// inference thread is one): settleFloat16Type makes that first Tensor with the global hidden, so
// float16 tensors stay Uint16Array, which the binding reads and which is how this project holds
// float16 data on every Node.js line.
import * as ort from 'onnxruntime-node';

export function settleFloat16Type(): void {
  const desc = Object.getOwnPropertyDescriptor(globalThis, 'Float16Array');
  const hide = desc?.configurable === true;
  if (hide) Object.defineProperty(globalThis, 'Float16Array', { ...desc, value: undefined });
  try {
    new ort.Tensor('float32', new Float32Array(1), [1]);
  } finally {
    if (hide) Object.defineProperty(globalThis, 'Float16Array', desc);
  }
}

/** Whether float16 tensors keep Uint16Array data here (false: a Tensor was made before settleFloat16Type ran). */
export function float16StaysUint16(): boolean {
  return new ort.Tensor('float16', new Uint16Array(1), [1]).data instanceof Uint16Array;
}
