// Typed RPC: executeMethod / executeMethodTransfer / collectiveRpc check a declared method's
// arguments and type its result from OmniWorkerMethods (core's, the built-in plugins', and any a
// plugin adds by declaration merging). Wrong arguments are compile errors: the TypeScript
// compiler runs here on consumer code, each line of which must compile or fail as marked.
import { describe, expect, expectTypeOf, it } from 'vitest';
import ts from 'typescript';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type {
  LoadWeightsResult, OmniWorker, RolloutBatch, ScoreResult, SleepState, WorkerStateInfo, AddLoraResult, HostTensor,
} from '../index.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('typed RPC', () => {
  it('types each declared method result, and leaves undeclared names unknown', () => {
    // Never called: the assertions are on types (tsc --noEmit), the call keeps them honest.
    const uses = (w: OmniWorker, rollout: RolloutBatch) => {
      expectTypeOf(w.executeMethod('getState')).resolves.toEqualTypeOf<WorkerStateInfo>();
      expectTypeOf(w.executeMethod('loadWeights', { source: 'x.safetensors' })).resolves.toEqualTypeOf<LoadWeightsResult>();
      expectTypeOf(w.executeMethodTransfer('loadWeights', [{ source: new Uint8Array(8), bucket: true }], [])).resolves.toEqualTypeOf<LoadWeightsResult>();
      expectTypeOf(w.collectiveRpc('sleepState')).resolves.toEqualTypeOf<SleepState[]>();
      expectTypeOf(w.executeMethod('addLora', { name: 'a', path: 'adapters/a' })).resolves.toEqualTypeOf<AddLoraResult>();
      expectTypeOf(w.executeMethod('computeLogProbs', {} as never)).resolves.toEqualTypeOf<ScoreResult>();
      expectTypeOf(w.executeMethod('someExtensionMethod', 1, 'two')).resolves.toBeUnknown();
      // Named rollout keys, still indexable by any name.
      expectTypeOf(rollout.batch.responses).toEqualTypeOf<HostTensor | undefined>();
      expectTypeOf(rollout.batch.rollout_log_probs).toEqualTypeOf<HostTensor | undefined>();
      expectTypeOf(rollout.batch['velocities']).toEqualTypeOf<HostTensor>();
      expectTypeOf(rollout.metaInfo.weights_version).toEqualTypeOf<number | undefined>();
    };
    expect(uses).toBeTypeOf('function');
  });

  it('refuses wrong arguments at compile time', () => {
    // Each line: the code, and whether it must compile.
    const lines: [string, boolean][] = [
      ["void w.executeMethod('loadWeights', { source: 'x.safetensors', component: 'text_encoder' }, { bucket: true });", true],
      ["void w.executeMethod('loadWeights', { component: 'transformer' });", false], // source is required
      ["void w.executeMethod('loadWeights', { source: 'x', component: 'vae' });", false], // no such component
      ["void w.executeMethod('sleep', { level: 3 });", false],
      ["void w.executeMethod('sleep');", true],
      ["void w.executeMethod('computeLogProbs');", false], // its argument is required
      ["void w.executeMethod('removeLora', 7);", false],
      ["void w.executeMethodTransfer('loadWeights', [{ source: 1 }], []);", false],
      ["void w.collectiveRpc('addLora', [{ name: 1 }]);", false],
      ["void w.collectiveRpc('listMethods');", true],
      ["const v: string = await w.executeMethod('getState');", false], // the result is typed
      ["void w.executeMethod('myOwnMethod', { anything: true });", true], // undeclared names stay open
      ["void w.generate([{ prompt: 'x', steps: 2 }]);", true],
      // Plugins type their request keys too (GenerateRequest, by declaration merging).
      ["void w.generate([{ prompt: 'x', sde: { type: 'sde', window: { size: 2, range: [0, 4] } }, capture: { logProbs: true }, lora: 'a' }]);", true],
      ["void w.generate([{ prompt: 'x', sde: { type: 'langevin' } }]);", false],
      ["void w.generate([{ prompt: 'x', capture: { latents: 'yes' } }]);", false],
      ["void w.generate([{ prompt: 'x', lora: { scale: 0.5 } }]);", false],
    ];
    const source = `import type { OmniWorker } from '../index.ts';\nexport async function f(w: OmniWorker) {\n${lines.map(([l]) => `  ${l}`).join('\n')}\n}\n`;
    const file = join(ROOT, 'test', '__rpc_consumer__.ts');
    const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
    const host = ts.createCompilerHost(parsed.options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, version, ...rest) => name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => name === file || fileExists(name);
    const program = ts.createProgram([file], parsed.options, host);
    const failing = new Set(ts.getPreEmitDiagnostics(program, program.getSourceFile(file))
      .map((d) => d.file!.getLineAndCharacterOfPosition(d.start!).line - 2));
    expect(lines.map(([l], i) => [l, !failing.has(i)])).toEqual(lines);
  });
});
