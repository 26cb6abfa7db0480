// Counts and times ONNX Runtime session builds in this process (the inline executor's worker
// builds its sessions here): tells a switch that reuses a session from one that builds one.
import * as ort from 'onnxruntime-node';

export interface SessionBuilds {
  count: number;
  seconds: number;
}

export function watchSessionBuilds(): SessionBuilds {
  const builds: SessionBuilds = { count: 0, seconds: 0 };
  const Session = ort.InferenceSession as unknown as { create: (...a: unknown[]) => Promise<ort.InferenceSession> };
  const create = Session.create.bind(Session);
  Session.create = async (...a: unknown[]) => {
    const t0 = performance.now();
    try {
      return await create(...a);
    } finally {
      builds.count++;
      builds.seconds += (performance.now() - t0) / 1000;
    }
  };
  return builds;
}

/** What `builds` gained while `fn` ran, and its wall seconds. */
export async function withBuilds<T>(builds: SessionBuilds, fn: () => Promise<T>): Promise<{ value: T; seconds: number; builds: number; buildSeconds: number }> {
  const [c, s, t0] = [builds.count, builds.seconds, performance.now()];
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1000, builds: builds.count - c, buildSeconds: builds.seconds - s };
}
