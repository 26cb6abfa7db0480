// A tiny ONNX graph builder over onnx-proto: enough to write the dummy model's graphs in code.
// Parameters become graph inputs (the model folder contract); constants become initializers.
// A graph has a precision: its parameters and constants are of that dtype, its data inputs and
// outputs float32 (cast at the boundary: docs/gpu-design.md, "Half precision").
import onnxProto from 'onnx-proto';
import { fromFloat32, PRECISION_DTYPE, PRECISION_ONNX, type FloatDType, type Precision } from '../../core/public.ts';

const { onnx } = onnxProto as unknown as { onnx: any };
const FLOAT = 1;
const INT64 = 7;

type Dim = number | string;

export class GraphBuilder {
  private readonly nodes: any[] = [];
  private readonly inputs: any[] = [];
  private readonly outputs: any[] = [];
  private readonly initializers: any[] = [];
  private counter = 0;

  constructor(private readonly name: string, readonly precision: Precision = 'float32') {}

  /** A data input: float32 or int64, whatever the graph's precision. */
  input(name: string, elemType: 'float' | 'int64', dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elemType === 'float' ? FLOAT : INT64, dims));
    return name;
  }

  /** A parameter input, in the graph's precision. */
  param(name: string, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, PRECISION_ONNX[this.precision], dims));
    return name;
  }

  /** `x` (of dtype `from`) as `to`: a Cast, or `x` itself when they are the same. */
  cast(x: string, from: Precision, to: Precision, outName?: string): string {
    if (from === to && !outName) return x;
    return this.op('Cast', [x], { to: PRECISION_ONNX[to] }, outName);
  }

  /** A float32 data input in the graph's precision. */
  fromFloat32(x: string): string {
    return this.cast(x, 'float32', this.precision);
  }

  /**
   * An output: the op runs in `precision` (the graph's by default) and the result is handed out
   * as float32 under `name`, through a Cast when the op's precision is not float32.
   */
  outputOp(opType: string, inputs: readonly string[], attrs: Record<string, number | number[]>, name: string, dims: readonly Dim[], precision = this.precision): string {
    const y = precision === 'float32' ? this.op(opType, inputs, attrs, name) : this.cast(this.op(opType, inputs, attrs), precision, 'float32', name);
    this.output(name, dims);
    return y;
  }

  output(name: string, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, FLOAT, dims));
  }

  constInt64(values: readonly number[]): string {
    const name = `const_${this.counter++}`;
    this.initializers.push(onnx.TensorProto.create({ name, dataType: INT64, dims: [values.length], int64Data: values }));
    return name;
  }

  /** A scalar constant in `precision` (the graph's by default), rounded to it as PyTorch would. */
  constFloat(value: number, precision = this.precision): string {
    const name = `const_${this.counter++}`;
    const dataType = PRECISION_ONNX[precision];
    if (precision === 'float32') {
      this.initializers.push(onnx.TensorProto.create({ name, dataType, dims: [], floatData: [value] }));
    } else {
      const bits = fromFloat32(Float32Array.of(value), PRECISION_DTYPE[precision] as FloatDType);
      this.initializers.push(onnx.TensorProto.create({ name, dataType, dims: [], rawData: new Uint8Array(bits.buffer) }));
    }
    return name;
  }

  /** Adds a node; returns its (first) output name, or `outName` when given. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, number | number[]> = {}, outName?: string): string {
    const out = outName ?? `${opType.toLowerCase()}_${this.counter++}`;
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v })
        : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v }));
    this.nodes.push(onnx.NodeProto.create({ opType, input: [...inputs], output: [out], attribute, name: out }));
    return out;
  }

  /** y = x W^T + b, W a PyTorch Linear weight [out, in]. */
  linear(x: string, prefix: string, bias = true): string {
    const wT = this.op('Transpose', [`${prefix}.weight`], { perm: [1, 0] });
    const y = this.op('MatMul', [x, wT]);
    return bias ? this.op('Add', [y, `${prefix}.bias`]) : y;
  }

  encode(): Uint8Array {
    const graph = onnx.GraphProto.create({
      name: this.name, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers,
    });
    const model = onnx.ModelProto.create({
      irVersion: 8, producerName: 'omni-worker dummy-loader', graph, opsetImport: [{ domain: '', version: 17 }],
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]) {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim } } } });
}
