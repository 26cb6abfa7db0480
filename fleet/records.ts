// The JSON records the fleet stores: rollout parts, weights versions, registry entries.

/** A part of a generate call, on the rollout work queue. */
export interface PartMessage {
  /** Sub-requests with explicit seeds. */
  requests: unknown[];
  /** The part must run on this weights version or a newer one. */
  minVersion: number;
}

/** The committed weights version (KV omni_weights, key 'current'). */
export interface WeightsRecord {
  version: number;
  /** Safetensors objects in the object store, applied in order as one update. */
  objects: { name: string; component: string; tensors: number; bytes: number }[];
  committedAt: string;
}

/** A worker's registry entry (KV omni_workers, key = worker id), refreshed by heartbeats. */
export interface RegistryEntry {
  id: string;
  host: string;
  pid: number;
  device: string;
  threads: number | null;
  weightsVersion: number;
  state: string;
  model: string;
  plugins: string[];
  methods: string[];
  /** Parts answered since start. */
  parts: number;
  startedAt: string;
  heartbeatAt: string;
  /** A weights version this worker could not apply. */
  weightsError?: { version: number; error: string };
}
