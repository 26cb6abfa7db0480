// DiffusionWorker: owns the device choice, the loaded model (sessions + weights) and the runner.
// Disposing it (container.dispose()) releases every ONNX Runtime session.
import type { WorkerConfig } from '../config/schema.ts';
import type { WorkerHooks } from '../hooks.ts';
import type { WorkerEvents, WorkerState } from '../events.ts';
import { COMPONENT_NAMES, type ComponentName } from '../model/manifest.ts';
import { OnnxComponent, type WeightResidency } from '../model/onnx-component.ts';
import { checkModel } from '../model/model-checks.ts';
import { checkPrecision, hasBf16Parameters } from '../model/precision.ts';
import { graphForDevice } from '../model/bf16-widen.ts';
import { sessionOptions } from '../model/execution-provider.ts';
import type { LoadedModel } from '../model/loaded-model.ts';
import type { ComponentSource, ModelSource } from '../model/source.ts';
import type { WeightSet, WeightStore } from '../model/weights.ts';
import type { DiffusionModelRunner } from '../model-runner/diffusion-model-runner.ts';
import type { Declarations } from '../worker-wrapper/declarations.ts';
import type { GenerateRequest, RolloutData } from '../protocol.ts';
import type { WorkerServices } from '../services.ts';
import { resolve as resolvePath } from 'node:path';
import { settlesWithin } from '../settles-within.ts';

const STUCK = 'a pipeline or plugin awaits a promise that never settles, or ignores the abort signal';

/** Built by the composition root (core/container.ts). */
export class DiffusionWorker {
  private loaded: LoadedModel | undefined;
  private status: WorkerState = 'loading';
  private readonly inFlight = new Set<{ work: Promise<unknown>; abort: AbortController }>();

  constructor(
    readonly config: WorkerConfig,
    private readonly hooks: WorkerHooks,
    private readonly events: WorkerEvents,
    readonly weights: WeightStore,
    readonly runner: DiffusionModelRunner,
    readonly services: WorkerServices,
    private readonly declarations: Declarations,
  ) {}

  get model(): LoadedModel {
    if (!this.loaded) throw new Error('no model is loaded');
    return this.loaded;
  }

  get state(): WorkerState {
    return this.status;
  }

  setState(state: WorkerState, detail?: string): void {
    this.status = state;
    this.events.emit('state', { state, detail });
  }

  /** Loads the model through the loader that answers config.loadFormat, and opens sessions. */
  async loadModel(): Promise<LoadedModel> {
    const { loadFormat, loadOptions, device, threads, deviceId, threadSpinning } = this.config;
    const model = this.config.model ? resolvePath(this.config.baseDir ?? '.', this.config.model) : '';
    const owner = this.declarations.ownerOf('loadFormat', loadFormat);
    if (!owner) throw this.declarations.unknown('loadFormat', loadFormat);
    const source = await this.hooks.loadModel.get(loadFormat)?.promise({ format: loadFormat, model, options: loadOptions });
    if (!source) throw new Error(`load format '${loadFormat}' (declared by ${owner}) gave no model: no loader tapped hooks.loadModel.for('${loadFormat}') answered`);
    if (!source.components.decoder && source.spec.latent.channels !== 3) {
      throw new Error(`model ${source.origin} has no decoder, so its latents are pixels and need 3 channels, not ${source.spec.latent.channels}`);
    }
    // Before any session opens or weight is installed: a refused model leaves nothing behind.
    const graphBounds = checkModel(source);
    checkPrecision(source, this.config.dtype);
    const residency = this.residencyFor(source);
    const options = sessionOptions(device, threads, deviceId, { spinning: threadSpinning });
    const resident = residency === 'session';
    const components: Partial<Record<ComponentName, OnnxComponent>> = {};
    const weights: WeightSet = {};
    for (const name of COMPONENT_NAMES) {
      const c = source.components[name];
      if (!c) continue;
      const context = resident
        ? { current: () => this.weights.get(name), settled: () => this.inFlightSettled(), spare: this.config.spareSessions }
        : undefined;
      components[name] = new OnnxComponent(name, graphForDevice(c.graph, device), device, options, context);
      weights[name] = c.weights;
    }
    this.weights.install(weights);
    this.loaded = {
      spec: source.spec,
      tokenizer: this.services.tokenizer(source.tokenizer),
      components: components as LoadedModel['components'],
      weights: this.weights,
      // The store owns the weights from here on: the kept source holds graphs and reloadWeights,
      // not maps that would pin the first version in memory after an update or a deep sleep.
      source: { ...source, components: graphsOnly(source.components) },
    };
    try {
      await this.openSessions();
      for (const [name, c] of Object.entries(components)) c.checkWeights(weights[name as ComponentName]!);
    } catch (e) {
      await this.releaseSessions();
      throw e;
    }
    this.weights.onChange((changed) => {
      if (changed.includes('text_encoder')) this.runner.promptCache.clear();
      for (const name of changed) components[name]?.weightsChanged();
    });
    this.weights.onPrepare(async (update) => {
      for (const [name, map] of Object.entries(update)) if (map) await components[name as ComponentName]?.prepare(map);
    });
    this.runner.attach(this.loaded, graphBounds);
    await this.hooks.afterLoadModel.promise(source);
    this.setState('ready');
    return this.loaded;
  }

  /**
   * Where the weights live between runs: config.weightResidency, 'auto' resolved by device, and by
   * the model: onnxruntime-node has no bfloat16 tensors, so bfloat16 parameters can only be
   * initializers (session residency); 'inputs' is refused for them.
   */
  private residencyFor(source: ModelSource): WeightResidency {
    const { weightResidency, device } = this.config;
    const bf16 = COMPONENT_NAMES.filter((n) => source.components[n] && hasBf16Parameters(source.components[n]!.graph, n));
    if (weightResidency === 'inputs' && bf16.length) {
      throw new Error(`config weightResidency 'inputs' cannot feed the bfloat16 parameters of ${bf16.join(', ')} (model ${source.origin}): ` +
        `onnxruntime-node has no bfloat16 tensors; use weightResidency 'session' or 'auto'`);
    }
    if (weightResidency !== 'auto') return weightResidency;
    return device === 'cuda' || bf16.length ? 'session' : 'inputs';
  }

  execute(requests: readonly GenerateRequest[]): Promise<RolloutData> {
    return this.runInFlight((signal) => this.runner.execute(requests, signal));
  }

  /**
   * Runs `work` as work in flight, like a rollout: drain (sleep, reInitPipeline, close) waits for
   * it, or aborts `signal` first. Plugins' model work (scoring) goes through here.
   */
  runInFlight<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.status === 'closed') return Promise.reject(new Error('the worker is closed'));
    const abort = new AbortController();
    const work = run(abort.signal);
    const entry = { work, abort };
    this.inFlight.add(entry);
    const done = () => this.inFlight.delete(entry);
    work.then(done, done); // in flight until the work itself stops, answered or not
    // After an abort the call is answered within abortTimeoutMs, even by a pipeline that never settles.
    return Promise.race([work, this.stuckAfterAbort(abort.signal, work)]);
  }

  private stuckAfterAbort(signal: AbortSignal, work: Promise<unknown>): Promise<never> {
    const ms = this.config.abortTimeoutMs;
    return new Promise((_, reject) => signal.addEventListener('abort', () => {
      void settlesWithin(work, ms).then((stopped) => {
        if (!stopped) reject(new Error(`rollout aborted (${(signal.reason as Error).message}) but still running after ${ms} ms (config abortTimeoutMs): ${STUCK}`));
      });
    }, { once: true }));
  }

  /** Resolves once the work in flight now has ended (answered or not). */
  private async inFlightSettled(): Promise<void> {
    await Promise.allSettled([...this.inFlight].map((e) => e.work));
  }

  /**
   * Waits for the work in flight (rollouts, scoring), or aborts it first. Aborted work gets
   * `config.abortTimeoutMs` to stop; past it the drain fails (a pipeline or plugin that never
   * settles), rather than hang.
   */
  async drain(mode: 'wait' | 'abort', { reason = 'aborted' }: { reason?: string } = {}): Promise<number> {
    const entries = [...this.inFlight];
    if (mode === 'abort') for (const e of entries) e.abort.abort(new Error(reason));
    const stopped = Promise.allSettled(entries.map((e) => e.work));
    if (mode === 'wait') {
      await stopped;
    } else if (!(await settlesWithin(stopped, this.config.abortTimeoutMs))) {
      const stuck = entries.filter((e) => this.inFlight.has(e)).length;
      throw new Error(`${stuck} of ${entries.length} aborted rollout(s) still running after ${this.config.abortTimeoutMs} ms (config abortTimeoutMs): ${STUCK}`);
    }
    return entries.length;
  }

  get componentsList(): OnnxComponent[] {
    return Object.values(this.loaded?.components ?? {});
  }

  async openSessions(): Promise<void> {
    for (const c of this.componentsList) await c.open();
  }

  /** Releases every session; returns how many were open. */
  async releaseSessions(): Promise<number> {
    let n = 0;
    for (const c of this.componentsList) if (await c.release()) n++;
    return n;
  }

  /** Called on container.dispose() (core/container.ts). */
  async dispose(): Promise<void> {
    if (this.status === 'closed') return;
    // WorkerWrapperBase.close drained already; what still runs is stuck and is not waited for.
    for (const e of this.inFlight) e.abort.abort(new Error('the worker is closed'));
    await this.releaseSessions();
    this.setState('closed');
  }
}

function graphsOnly(components: ModelSource['components']): ModelSource['components'] {
  const out: Partial<Record<ComponentName, ComponentSource>> = {};
  for (const [name, c] of Object.entries(components)) if (c) out[name as ComponentName] = { graph: c.graph, weights: new Map() };
  return out as ModelSource['components'];
}
