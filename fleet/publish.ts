// JetStream publishes that outlast a server restart: retried until stored or the deadline passes.
// A message id makes the retries safe (the stream keeps one copy within its duplicate window).
import type { JetStreamPublishOptions, PubAck } from '@nats-io/jetstream';
import type { Fleet } from './connection.ts';

export async function publishWithRetry(fleet: Fleet, subject: string, body: Uint8Array, options: Partial<JetStreamPublishOptions> & { msgID: string }, retryMs: number): Promise<PubAck> {
  const deadline = Date.now() + retryMs;
  for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
    try {
      return await fleet.js.publish(subject, body, { ...options, timeout: 5_000 });
    } catch (e) {
      if (Date.now() + wait > deadline) throw new Error(`fleet: could not store a message on ${subject} within ${retryMs} ms: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
