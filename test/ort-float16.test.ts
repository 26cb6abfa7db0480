// float16 graph inputs on every Node.js line: on Node 24+ (a Float16Array global) onnxruntime-node
// 1.29.0's binding reads Float16Array data as empty, so omni-worker keeps float16 tensors Uint16Array
// (core/model/ort-float16.ts). The worker-level float16 runs are in half-precision.test.ts.
import { describe, expect, it } from 'vitest';
import { toOrt } from '../core/model/onnx-component.ts';
import { float16StaysUint16 } from '../core/model/ort-float16.ts';

describe('float16 tensors for ONNX Runtime', () => {
  it('keep Uint16Array data once omni-worker has loaded, whether or not the runtime has Float16Array', () => {
    expect(float16StaysUint16()).toBe(true);
    const t = toOrt({ dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) });
    expect(t.data).toBeInstanceOf(Uint16Array);
    expect([...(t.data as Uint16Array)]).toEqual([0x3c00, 0xc000]);
  });
});
