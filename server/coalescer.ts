// Rollout calls from many HTTP callers merged into one generate call (as vLLM's scheduler batches
// sequences), each caller handed back its own rows. One generate call runs at a time: while it
// runs, new calls queue; when the worker is idle, calls gather until none arrives for a short
// window. A call that fills the batch dispatches at once. The queue is bounded (back-pressure).
import type { GenerateRequest, RolloutBatch } from '../core/public.ts';
import { callShape, type CallShape } from './coalesce-key.ts';
import { HttpError } from './http-error.ts';

export interface CoalescerOptions {
  /** Samples one merged call may hold (a caller asking for more runs alone). */
  maxBatchSize: number;
  /** How long an idle worker waits for other callers to join the first one, in ms. */
  windowMs: number;
  /** Samples waiting at most; past it, 429 with Retry-After. */
  maxQueuedSamples: number;
}

export interface CoalescerEvents {
  /** One generate call ran: callers merged, samples, seconds. */
  onDispatch?(info: { callers: number; samples: number; seconds: number; ok: boolean }): void;
}

/** The longest an idle worker waits for more calls, in windows from the first call's arrival. */
const MAX_WINDOWS = 5;

interface Ticket extends CallShape {
  requests: GenerateRequest[];
  signal?: AbortSignal;
  resolve(batch: RolloutBatch): void;
  reject(e: unknown): void;
}

export class RolloutCoalescer {
  private readonly queue: Ticket[] = [];
  private queuedSamples = 0;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the first call of the current window arrived. */
  private windowStart: number | undefined;
  private closed: string | undefined;
  /** Samples per second of recent calls, for Retry-After. */
  private rate = 0;

  constructor(
    private readonly generate: (requests: GenerateRequest[]) => Promise<RolloutBatch>,
    private readonly options: CoalescerOptions,
    private readonly events: CoalescerEvents = {},
  ) {}

  get depth(): { callers: number; samples: number } {
    return { callers: this.queue.length, samples: this.queuedSamples };
  }

  /** The caller's rollout, alone or merged; rejects with 429 when the queue is full. */
  submit(requests: GenerateRequest[], signal?: AbortSignal): Promise<RolloutBatch> {
    if (this.closed) return Promise.reject(new HttpError(503, undefined, this.closed));
    const shape = callShape(requests);
    // An empty queue takes any call: one larger than the bound could never run otherwise.
    if (this.queue.length && this.queuedSamples + shape.samples > this.options.maxQueuedSamples) {
      const seconds = this.rate > 0 ? Math.ceil(this.queuedSamples / this.rate) : 1;
      const retry = String(Math.min(60, Math.max(1, seconds)));
      return Promise.reject(new HttpError(429, undefined,
        `the rollout queue is full (${this.queuedSamples} samples waiting, at most ${this.options.maxQueuedSamples}): retry after ${retry} s`,
        { 'retry-after': retry }));
    }
    return new Promise<RolloutBatch>((resolve, reject) => {
      const ticket: Ticket = { ...shape, requests, signal, resolve, reject };
      this.queue.push(ticket);
      this.queuedSamples += shape.samples;
      signal?.addEventListener('abort', () => this.cancel(ticket), { once: true });
      this.schedule();
    });
  }

  /** Refuses new calls and queued ones (503 with `reason`), then waits for the call in flight. */
  async close(reason: string): Promise<void> {
    this.closed = reason;
    clearTimeout(this.timer);
    for (const t of this.queue.splice(0)) t.reject(new HttpError(503, undefined, reason));
    this.queuedSamples = 0;
    await this.inFlight;
  }

  /** A caller gone while queued leaves the queue; once running, its rows are dropped. */
  private cancel(ticket: Ticket): void {
    const i = this.queue.indexOf(ticket);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.queuedSamples -= ticket.samples;
    ticket.reject(new HttpError(499, undefined, 'the client closed the connection'));
  }

  private get cap(): number {
    return this.options.maxBatchSize;
  }

  /**
   * With the worker idle: at once when the queue fills a batch; otherwise once no call has
   * arrived for windowMs (each arrival extends the wait, up to MAX_WINDOWS windows from the
   * first), so callers whose requests trickle in still share one call.
   */
  private schedule(): void {
    if (this.inFlight || !this.queue.length || this.closed) return;
    const now = performance.now();
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queuedSamples >= this.cap || this.options.windowMs <= 0) {
      this.windowStart = undefined;
      this.start();
      return;
    }
    this.windowStart ??= now;
    const wait = Math.min(this.options.windowMs, this.windowStart + MAX_WINDOWS * this.options.windowMs - now);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.windowStart = undefined;
      this.start();
    }, Math.max(0, wait));
  }

  /** The head of the queue, and every later call with its key that fits beside it. */
  private take(): Ticket[] {
    const head = this.queue[0];
    const group = [head];
    let samples = head.samples;
    if (head.key !== undefined) {
      for (const t of this.queue.slice(1)) {
        if (t.key === head.key && samples + t.samples <= this.cap) {
          group.push(t);
          samples += t.samples;
        }
      }
    }
    for (const t of group) {
      this.queue.splice(this.queue.indexOf(t), 1);
      this.queuedSamples -= t.samples;
    }
    return group;
  }

  private start(): void {
    if (this.inFlight || !this.queue.length) return;
    const group = this.take();
    this.inFlight = this.run(group).finally(() => {
      this.inFlight = undefined;
      // Callers that queued meanwhile already waited: no window for them.
      if (this.queue.length && !this.closed) this.start();
    });
  }

  private async timed(requests: GenerateRequest[], callers: number, samples: number): Promise<RolloutBatch> {
    const t0 = performance.now();
    let ok = false;
    try {
      const batch = await this.generate(requests);
      ok = true;
      return batch;
    } finally {
      const seconds = (performance.now() - t0) / 1000;
      if (ok && seconds > 0) this.rate = samples / seconds;
      this.events.onDispatch?.({ callers, samples, seconds, ok });
    }
  }

  private async runAlone(t: Ticket): Promise<void> {
    try {
      t.resolve(await this.timed(t.requests, 1, t.samples));
    } catch (e) {
      t.reject(e);
    }
  }

  private async run(group: Ticket[]): Promise<void> {
    const live = group.filter((t) => !t.signal?.aborted);
    if (live.length <= 1) {
      if (live.length) await this.runAlone(live[0]);
      return;
    }
    let merged: RolloutBatch;
    try {
      merged = await this.timed(live.flatMap((t) => t.requests), live.length, live.reduce((s, t) => s + t.samples, 0));
    } catch {
      // Whatever the merged call failed on, no caller may get a refusal it would not get alone:
      // each runs on its own, and gets its own result or error.
      for (const t of live) await this.runAlone(t);
      return;
    }
    let row = 0;
    for (const t of live) {
      const rows = Array.from({ length: t.samples }, (_, k) => row + k);
      row += t.samples;
      t.resolve(merged.selectIdxs(rows));
    }
  }
}
