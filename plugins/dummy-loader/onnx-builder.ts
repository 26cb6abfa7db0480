// A tiny ONNX graph builder over onnx-proto: enough to write the dummy model's graphs in code.
// Parameters become graph inputs (the model folder contract); constants become initializers.
import onnxProto from 'onnx-proto';

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

  constructor(private readonly name: string) {}

  input(name: string, elemType: 'float' | 'int64', dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elemType === 'float' ? FLOAT : INT64, dims));
    return name;
  }

  output(name: string, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, FLOAT, dims));
  }

  constInt64(values: readonly number[]): string {
    const name = `const_${this.counter++}`;
    this.initializers.push(onnx.TensorProto.create({ name, dataType: INT64, dims: [values.length], int64Data: values }));
    return name;
  }

  constFloat(value: number): string {
    const name = `const_${this.counter++}`;
    this.initializers.push(onnx.TensorProto.create({ name, dataType: FLOAT, dims: [], floatData: [value] }));
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
