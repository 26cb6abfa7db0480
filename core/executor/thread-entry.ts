// The inference thread: builds the WorkerWrapperBase and serves calls. ONNX Runtime's run
// blocks this thread, never the caller's.
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { WorkerWrapperBase } from '../worker-wrapper/worker-wrapper-base.ts';
import { WORKER_EVENT_NAMES } from '../events.ts';
import type { WorkerConfig } from '../config/schema.ts';
import type { PluginRegistry } from '../plugin.ts';
import { serializeError, transferables, type FromThread, type ToThread } from './protocol.ts';
import { useNativeGate } from './native-gate.ts';
import { StartWatch } from './start-watch.ts';
import { EventInterest } from './event-interest.ts';

const port = parentPort!;
const { config, registryModule, registryExport, gate, watch: watchBuffer, events: eventsBuffer } = workerData as {
  config: WorkerConfig; registryModule?: string; registryExport?: string; gate: SharedArrayBuffer; watch: SharedArrayBuffer; events: SharedArrayBuffer;
};
const watch = new StartWatch(watchBuffer);
const interest = new EventInterest(eventsBuffer);
useNativeGate(gate);
const post = (m: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let wrapper: WorkerWrapperBase;
try {
  const registry = registryModule
    ? ((await import(pathToFileURL(registryModule).href)) as Record<string, PluginRegistry>)[registryExport ?? 'default']
    : {};
  wrapper = await WorkerWrapperBase.create(config, { registry });
} catch (e) {
  post({ kind: 'failed', error: serializeError(e) });
  process.exit(0);
}

// Only what the caller listens to: each message wakes the caller's thread (event-interest.ts).
for (const name of WORKER_EVENT_NAMES) {
  wrapper.events.on(name, (payload: unknown) => {
    if (interest.has(name)) post({ kind: 'event', name, payload });
  });
}

port.on('message', async (m: ToThread) => {
  if (m.kind === 'close') {
    await wrapper.close(); // never rejects: problems are reported as 'log' events
    post({ kind: 'result', id: m.id, ok: true, value: null });
    return;
  }
  if (!watch.begin(m.id)) {
    post({ kind: 'result', id: m.id, ok: false, error: serializeError(new Error(`${m.method}: given up by the caller before the thread could take it up; not run`)) });
    return;
  }
  try {
    const value = await wrapper.executeMethod(m.method, ...m.args);
    // A rollout's tensors are built fresh per call, so they move instead of being copied.
    // Other methods may return state the worker keeps: those are copied.
    post({ kind: 'result', id: m.id, ok: true, value }, m.method === 'generate' ? transferables(value) : []);
  } catch (e) {
    post({ kind: 'result', id: m.id, ok: false, error: serializeError(e) });
  }
});

post({ kind: 'ready', methods: wrapper.methods.names() });
