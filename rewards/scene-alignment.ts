// Scene-alignment reward (GenEval-style) for shapes-dit prompts: a small CNN
// (scene-classifier.onnx, trained on the scene generator's labelled renders) reads, for each of
// five position slots, the shape (none/circle/square/triangle) and colour, plus the background
// colour; the prompt is parsed into objects (shape, colour?, position?) and a background; the score
// is the fraction of the prompt's attributes present in the image. Mirrors python/omni_ref/reward.py.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { checkImages, type ImageBatch } from './images.ts';
import { PACKAGE_ROOT } from '../core/package-paths.ts';

/** The classifier's files, shipped in the package's rewards/ folder (not beside compiled code). */
export const DEFAULT_REWARDS_DIR = join(PACKAGE_ROOT, 'rewards');

export interface SceneClassifierSpec {
  graph: string;
  input: { name: string; shape: (string | number)[] };
  outputs: Record<string, (string | number)[]>;
  slots: string[];
  shapes: string[]; // index 0 is "none"
  colors: string[];
  backgrounds: string[];
  sizes: string[];
  captions: { positionPhrases: Record<string, string>; positionAliases: Record<string, string> };
}

export interface PromptObject { shape: string; color: string | null; position: string | null }
export interface ParsedPrompt { objects: PromptObject[]; background: string | null }
export type ScoreMode = 'hard' | 'soft';

/**
 * Reads the prompt's words (/[a-z0-9]+/ of the lowercased text) left to right: a colour word is
 * held until the next shape word, which starts an object; "top|bottom left|right" and
 * "center|centre|middle" set the last object's position (or the next object's, before any);
 * "<background colour> background" sets the background. Colours that are not shape colours (e.g.
 * "white circle") leave the object's colour unscored. At most as many objects as slots.
 */
export function parsePrompt(text: string, spec: SceneClassifierSpec): ParsedPrompt {
  const words = text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  const objects: PromptObject[] = [];
  let background: string | null = null;
  let pendingColor: string | null = null;
  let pendingPos: string | null = null;
  let lastColor: string | null = null;
  const center = new Set(['center', ...Object.keys(spec.captions.positionAliases)]);
  const setPos = (pos: string) => {
    const last = objects[objects.length - 1];
    if (last && last.position === null) last.position = pos;
    else pendingPos = pos;
  };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === 'background') {
      if (lastColor !== null && spec.backgrounds.includes(lastColor)) background = lastColor;
      pendingColor = null;
    } else if (spec.colors.includes(w) || spec.backgrounds.includes(w)) {
      pendingColor = w;
      lastColor = w;
    } else if (spec.shapes.includes(w) && w !== 'none') {
      const color = pendingColor !== null && spec.colors.includes(pendingColor) ? pendingColor : null;
      objects.push({ shape: w, color, position: pendingPos });
      pendingColor = null;
      pendingPos = null;
    } else if ((w === 'top' || w === 'bottom') && (words[i + 1] === 'left' || words[i + 1] === 'right')) {
      setPos(`${w} ${words[i + 1]}`);
      i++;
    } else if (center.has(w)) {
      setPos('center');
    }
  }
  return { objects: objects.slice(0, spec.slots.length), background };
}

function softmaxRow(x: Float32Array, off: number, n: number): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, x[off + i]!);
  const out = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) { out[i] = Math.exp(x[off + i]! - m); s += out[i]!; }
  for (let i = 0; i < n; i++) out[i]! /= s;
  return out;
}

function argmaxRow(x: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[off + i]! > x[off + best]!) best = i;
  return best;
}

export interface ClassifierOutput {
  batch: number;
  /** [B, slots, shapes] logits; shape index 0 = no object. */
  shapeLogits: Float32Array;
  /** [B, slots, colors] logits. */
  colorLogits: Float32Array;
  /** [B, backgrounds] logits. */
  backgroundLogits: Float32Array;
}

/** Score of image `b` of `out` for a parsed prompt (fraction of attributes matched, 0 if none named). */
export function scoreParsed(parsed: ParsedPrompt, out: ClassifierOutput, b: number, spec: SceneClassifierSpec, mode: ScoreMode = 'hard'): number {
  const nSlots = spec.slots.length, nShapes = spec.shapes.length, nColors = spec.colors.length, nBg = spec.backgrounds.length;
  const objs = parsed.objects;
  let nAttr = parsed.background !== null ? 1 : 0;
  for (const o of objs) nAttr += 1 + (o.color !== null ? 1 : 0) + (o.position !== null ? 1 : 0);
  if (nAttr === 0) return 0;
  const shapeP: Float64Array[] = [], colorP: Float64Array[] = [], occ: number[] = [], shapeA: number[] = [], colorA: number[] = [];
  for (let s = 0; s < nSlots; s++) {
    const so = (b * nSlots + s) * nShapes, co = (b * nSlots + s) * nColors;
    shapeP.push(softmaxRow(out.shapeLogits, so, nShapes));
    colorP.push(softmaxRow(out.colorLogits, co, nColors));
    shapeA.push(argmaxRow(out.shapeLogits, so, nShapes));
    colorA.push(argmaxRow(out.colorLogits, co, nColors));
    occ.push(mode === 'hard' ? (shapeA[s] !== 0 ? 1 : 0) : 1 - shapeP[s]![0]!);
  }
  // m[o][s]: attributes of object o matched if it sits in slot s
  const m = objs.map((o) => {
    const k = spec.shapes.indexOf(o.shape);
    const c = o.color !== null ? spec.colors.indexOf(o.color) : -1;
    const p = o.position !== null ? spec.slots.indexOf(o.position) : -1;
    const row: number[] = [];
    for (let s = 0; s < nSlots; s++) {
      let v = mode === 'hard' ? (shapeA[s] === k ? 1 : 0) : shapeP[s]![k]!;
      if (c >= 0) v += mode === 'hard' ? (occ[s]! && colorA[s] === c ? 1 : 0) : occ[s]! * colorP[s]![c]!;
      if (p >= 0) v += occ[s]! * (s === p ? 1 : 0);
      row.push(v);
    }
    return row;
  });
  // best assignment of objects to distinct slots (exhaustive: at most 5 objects, 5 slots)
  const used = new Array<boolean>(nSlots).fill(false);
  const best = (o: number): number => {
    if (o === objs.length) return 0;
    let top = -Infinity;
    for (let s = 0; s < nSlots; s++) {
      if (used[s]) continue;
      used[s] = true;
      top = Math.max(top, m[o]![s]! + best(o + 1));
      used[s] = false;
    }
    return top;
  };
  let total = best(0);
  if (parsed.background !== null) {
    const bi = spec.backgrounds.indexOf(parsed.background);
    total += mode === 'hard'
      ? (argmaxRow(out.backgroundLogits, b * nBg, nBg) === bi ? 1 : 0)
      : softmaxRow(out.backgroundLogits, b * nBg, nBg)[bi]!;
  }
  return total / nAttr;
}

export interface SceneAlignmentOptions {
  /** ONNX Runtime intra-op threads (default 1). */
  intraOpNumThreads?: number;
  /** 'hard' (default): argmax decisions, GenEval-style; 'soft': classifier probabilities. */
  mode?: ScoreMode;
  /** Images per classifier call (default 64). */
  chunk?: number;
}

export class SceneAlignmentReward {
  private constructor(
    private session: ort.InferenceSession | null,
    readonly spec: SceneClassifierSpec,
    private readonly options: Required<SceneAlignmentOptions>,
  ) {}

  /** Loads `scene-classifier.json` and its ONNX graph from `dir` (default: this folder). */
  static async load(dir: string = DEFAULT_REWARDS_DIR, options: SceneAlignmentOptions = {}): Promise<SceneAlignmentReward> {
    const spec = JSON.parse(readFileSync(join(dir, 'scene-classifier.json'), 'utf8')) as SceneClassifierSpec;
    const threads = options.intraOpNumThreads ?? 1;
    const session = await ort.InferenceSession.create(join(dir, spec.graph), {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    });
    return new SceneAlignmentReward(session, spec, { intraOpNumThreads: threads, mode: options.mode ?? 'hard', chunk: options.chunk ?? 64 });
  }

  /** Parses a prompt with this classifier's vocabulary. */
  parse(prompt: string): ParsedPrompt {
    return parsePrompt(prompt, this.spec);
  }

  /** Runs the classifier on a uint8 [B, 3, 32, 32] batch. */
  async classify(images: ImageBatch): Promise<ClassifierOutput> {
    if (!this.session) throw new Error('SceneAlignmentReward: used after dispose()');
    const { batch, height, width } = checkImages(images, 'SceneAlignmentReward');
    const [, , H, W] = this.spec.input.shape as [unknown, unknown, number, number];
    if (height !== H || width !== W) {
      throw new RangeError(`SceneAlignmentReward: the scene classifier expects ${H}x${W} images, got ${height}x${width}`);
    }
    const nS = this.spec.slots.length;
    const out: ClassifierOutput = {
      batch,
      shapeLogits: new Float32Array(batch * nS * this.spec.shapes.length),
      colorLogits: new Float32Array(batch * nS * this.spec.colors.length),
      backgroundLogits: new Float32Array(batch * this.spec.backgrounds.length),
    };
    const per = 3 * H * W;
    for (let b0 = 0; b0 < batch; b0 += this.options.chunk) {
      const n = Math.min(this.options.chunk, batch - b0);
      const x = new Float32Array(n * per);
      for (let i = 0; i < n * per; i++) x[i] = images.data[b0 * per + i]!;
      const res = await this.session.run({ [this.spec.input.name]: new ort.Tensor('float32', x, [n, 3, H, W]) });
      out.shapeLogits.set(res['shape_logits']!.data as Float32Array, b0 * nS * this.spec.shapes.length);
      out.colorLogits.set(res['color_logits']!.data as Float32Array, b0 * nS * this.spec.colors.length);
      out.backgroundLogits.set(res['background_logits']!.data as Float32Array, b0 * this.spec.backgrounds.length);
    }
    return out;
  }

  /** One score in [0, 1] per image: the fraction of its prompt's attributes found in it. */
  async score(images: ImageBatch, prompts: readonly string[], options: { mode?: ScoreMode } = {}): Promise<Float32Array> {
    const { batch } = checkImages(images, 'SceneAlignmentReward');
    if (!Array.isArray(prompts) || prompts.length !== batch || !prompts.every((p) => typeof p === 'string')) {
      throw new RangeError(`SceneAlignmentReward: need one prompt string per image (${batch}), got ${Array.isArray(prompts) ? prompts.length : typeof prompts}`);
    }
    const out = await this.classify(images);
    const mode = options.mode ?? this.options.mode;
    const r = new Float32Array(batch);
    for (let b = 0; b < batch; b++) r[b] = scoreParsed(this.parse(prompts[b]!), out, b, this.spec, mode);
    return r;
  }

  async dispose(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s) await s.release();
  }
}
