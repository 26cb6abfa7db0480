// The data-parallel grid of bench/fleet.ts: entries "WxT[+option...]" (W workers of T ONNX Runtime
// threads), and the ratios that say where scaling goes: each worker count against one worker, the
// bare ONNX Runtime loops' same ratio (the hardware ceiling, fleet-ceiling.ts), and the first.

export const GRID_OPTIONS = ['spin', 'session', 'all', 'pin'] as const;
export type GridOption = (typeof GRID_OPTIONS)[number];

export interface GridEntry {
  label: string;
  workers: number;
  threads: number;
  /** ONNX Runtime threads spin (config threadSpinning). */
  spin: boolean;
  /** Weights as session initializers (config weightResidency 'session'), not inputs. */
  session: boolean;
  /** Every call split across every worker (config dataParallelSplit 'all'), not the idle ones. */
  all: boolean;
  /** The ceiling is also measured with each loop's pool threads pinned to processors of its own (the workers are not). */
  pin: boolean;
}

/** "1x4,4x4+spin,16x1" → entries; an error names the entry and what is wrong, before any work. */
export function parseGrid(text: string): GridEntry[] {
  const entries = text.split(',').map((s) => s.trim()).filter(Boolean).map((label) => {
    const m = /^(\d+)x(\d+)((?:\+[a-z]+)*)$/.exec(label);
    if (!m) throw new Error(`--grid entry '${label}': expected WORKERSxTHREADS[+option...], e.g. 4x4+spin (options: ${GRID_OPTIONS.join(', ')})`);
    const [workers, threads] = [Number(m[1]), Number(m[2])];
    if (workers < 1 || threads < 1) throw new Error(`--grid entry '${label}': workers and threads must be at least 1`);
    const options = m[3].split('+').filter(Boolean);
    const unknown = options.find((o) => !(GRID_OPTIONS as readonly string[]).includes(o));
    if (unknown) throw new Error(`--grid entry '${label}': unknown option '${unknown}' (options: ${GRID_OPTIONS.join(', ')})`);
    const has = (o: GridOption) => options.includes(o);
    return { label, workers, threads, spin: has('spin'), session: has('session'), all: has('all'), pin: has('pin') };
  });
  if (!entries.length) throw new Error('--grid: no entries');
  return entries;
}

/** Entries that differ only in worker count (and the ceiling's pinning) compare with each other. */
export function shapeKey(e: GridEntry): string {
  return `${e.threads}:${e.spin}:${e.session}:${e.all}`;
}

export interface Measured {
  entry: GridEntry;
  imagesPerSecond: number;
  /**
   * Bare loops: samples/s of one loop alone and of `workers` loops at once, and of those pinned
   * (entries with 'pin'); undefined: not measured.
   */
  ceiling?: { one: number; all: number; pinned?: number };
}

export interface GridRow {
  label: string;
  imagesPerSecond: number;
  /** Against one worker of the same shape in this grid (undefined when the grid has none). */
  scaling?: number;
  /** The bare loops' own scaling: `workers` loops against one. */
  ceilingScaling?: number;
  /** scaling / ceilingScaling: what the executor and pipeline keep of what the machine allows. */
  ofCeiling?: number;
  /** The pinned bare loops' scaling ('pin' entries). */
  pinnedCeilingScaling?: number;
  /**
   * images/s x steps / the bare loops' samples/s: the share of the transformer-only rate the
   * workers reach at this shape (the pipeline's and the executor's cost, no one-worker entry needed).
   */
  ofBareRate?: number;
  /** Against the grid's first entry (the baseline, e.g. 1x4). */
  vsFirst: number;
}

/** `steps`: denoising steps per image (transformer runs per sample). */
export function gridRows(measured: readonly Measured[], steps: number): GridRow[] {
  const first = measured[0];
  return measured.map((m) => {
    const one = measured.find((o) => o.entry.workers === 1 && shapeKey(o.entry) === shapeKey(m.entry));
    const scaling = one ? m.imagesPerSecond / one.imagesPerSecond : undefined;
    const ceilingScaling = m.ceiling ? m.ceiling.all / m.ceiling.one : undefined;
    const ofCeiling = scaling !== undefined && ceilingScaling !== undefined ? scaling / ceilingScaling : undefined;
    const pinnedCeilingScaling = m.ceiling?.pinned !== undefined ? m.ceiling.pinned / m.ceiling.one : undefined;
    const ofBareRate = m.ceiling ? (m.imagesPerSecond * steps) / m.ceiling.all : undefined;
    return { label: m.entry.label, imagesPerSecond: m.imagesPerSecond, scaling, ceilingScaling, ofCeiling, pinnedCeilingScaling, ofBareRate, vsFirst: m.imagesPerSecond / first.imagesPerSecond };
  });
}
