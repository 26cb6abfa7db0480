// /metrics in Prometheus' text format (prom-client, one registry per server): rollouts, samples,
// generate calls (fewer than rollouts when calls merge), per-step latency, queue depth, the
// weights version serving, and whether the worker sleeps. Kept from events and results, so a
// scrape never waits on the inference thread.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { WorkerEvents } from '../core/public.ts';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly rollouts = new Counter({ name: 'omni_worker_rollouts_total', help: 'Rollout calls answered, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly samples = new Counter({ name: 'omni_worker_samples_total', help: 'Samples returned to callers', registers: [this.registry] });
  readonly generateCalls = new Counter({ name: 'omni_worker_generate_calls_total', help: 'Generate calls the worker ran (merged rollouts count once)', registers: [this.registry] });
  readonly mergedCallers = new Histogram({ name: 'omni_worker_callers_per_generate', help: 'Rollout calls merged into one generate call', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry] });
  readonly stepSeconds = new Histogram({
    name: 'omni_worker_step_seconds', help: 'Wall time of one denoising step of a batch',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry],
  });
  readonly queueCallers = new Gauge({ name: 'omni_worker_queue_callers', help: 'Rollout calls waiting for the worker', registers: [this.registry] });
  readonly queueSamples = new Gauge({ name: 'omni_worker_queue_samples', help: 'Samples waiting for the worker', registers: [this.registry] });
  readonly weightsVersion = new Gauge({ name: 'omni_worker_weights_version', help: 'Weights version serving (weight commits so far)', registers: [this.registry] });
  readonly sleeping = new Gauge({ name: 'omni_worker_sleeping', help: '1 while the worker sleeps, 0 when awake', registers: [this.registry] });
  readonly weightBytes = new Counter({ name: 'omni_worker_weight_update_bytes_total', help: 'Weight bytes received (HTTP bodies and paths)', registers: [this.registry] });

  private readonly lastStep = new Map<number, number>();

  /** Step latency: the time between consecutive step events of one batch. */
  listen(events: WorkerEvents): () => void {
    const onStep = (s: { batchId: number; step: number; steps: number }) => {
      const now = performance.now();
      const last = this.lastStep.get(s.batchId);
      if (last !== undefined) this.stepSeconds.observe((now - last) / 1000);
      if (s.step >= s.steps) this.lastStep.delete(s.batchId);
      else this.lastStep.set(s.batchId, now);
    };
    const onState = (s: { state: string }) => this.sleeping.set(s.state === 'sleeping' ? 1 : 0);
    events.on('step', onStep);
    events.on('state', onState);
    return () => {
      events.off('step', onStep);
      events.off('state', onState);
    };
  }

  /** Any result that reports a weights version (rollout meta, weight updates, wakes). */
  noteVersion(value: unknown): void {
    if (typeof value === 'number' && Number.isFinite(value)) this.weightsVersion.set(value);
  }
}
