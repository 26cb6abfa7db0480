import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SceneAlignmentReward, parsePrompt } from '../rewards/scene-alignment.ts';
import { jpegCompressibility, jpegSizes } from '../rewards/jpeg-compressibility.ts';
import { parseSafetensors } from '../core/tensors/safetensors.ts';
import type { ImageBatch } from '../rewards/images.ts';

// Minimal safetensors reader (test-local): header JSON + little-endian data.
function readSafetensors(path: string) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, any>;
  const meta = (header.__metadata__ ?? {}) as Record<string, string>;
  const get = (name: string) => {
    const h = header[name];
    const [s, e] = h.data_offsets as [number, number];
    const bytes = buf.subarray(8 + n + s, 8 + n + e);
    const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const data = h.dtype === 'U8' ? new Uint8Array(copy) : new Float32Array(copy);
    return { dtype: h.dtype as string, shape: h.shape as number[], data };
  };
  return { meta, get };
}

function flat(rgb: [number, number, number], b = 1, h = 32, w = 32) {
  const data = new Uint8Array(b * 3 * h * w);
  for (let i = 0; i < b; i++) for (let c = 0; c < 3; c++) data.fill(rgb[c]!, (i * 3 + c) * h * w, (i * 3 + c + 1) * h * w);
  return { data, shape: [b, 3, h, w] };
}

/** A disc drawn in TS (4x supersampled), NCHW uint8. */
function disc(rgb: [number, number, number], bg: [number, number, number], cx: number, cy: number, r: number) {
  const img = flat(bg);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
    let cover = 0;
    for (let sy = 0; sy < 4; sy++) for (let sx = 0; sx < 4; sx++) {
      const px = x + (sx + 0.5) / 4, py = y + (sy + 0.5) / 4;
      if ((px - cx) ** 2 + (py - cy) ** 2 <= r * r) cover++;
    }
    for (let c = 0; c < 3; c++) img.data[c * 1024 + y * 32 + x] = Math.round((rgb[c]! * cover + bg[c]! * (16 - cover)) / 16);
  }
  return img;
}

describe('scene alignment reward', () => {
  let reward: SceneAlignmentReward;
  beforeAll(async () => { reward = await SceneAlignmentReward.load(undefined, { intraOpNumThreads: 1 }); });
  afterAll(async () => { await reward.dispose(); });

  it('parses captions into objects, positions and background', () => {
    expect(parsePrompt('a red circle', reward.spec)).toEqual({ objects: [{ shape: 'circle', color: 'red', position: null }], background: null });
    expect(reward.parse('A small Green triangle at the bottom right and a yellow circle at the top left, on a gray background.')).toEqual({
      objects: [
        { shape: 'triangle', color: 'green', position: 'bottom right' },
        { shape: 'circle', color: 'yellow', position: 'top left' },
      ],
      background: 'gray',
    });
    expect(reward.parse('in the middle an orange square')).toEqual({ objects: [{ shape: 'square', color: 'orange', position: 'center' }], background: null });
    expect(reward.parse('the sky')).toEqual({ objects: [], background: null });
  });

  it('a red circle drawn in TS scores higher for "a red circle" than for "a blue square"', async () => {
    const img = disc([220, 40, 40], [245, 245, 245], 16, 16, 6.5);
    const both = { data: new Uint8Array([...img.data, ...img.data]), shape: [2, 3, 32, 32] };
    const [good, bad] = await reward.score(both, ['a red circle', 'a blue square']);
    expect(good).toBe(1);
    expect(bad).toBe(0);
    const [pos, wrongPos] = await reward.score(both, ['a red circle in the center on a white background', 'a red circle at the top left on a black background']);
    expect(pos).toBe(1);
    expect(wrongPos!).toBeLessThan(pos!);
    const soft = await reward.score(both, ['a red circle', 'a blue square'], { mode: 'soft' });
    expect(soft[0]!).toBeGreaterThan(0.9);
    expect(soft[1]!).toBeLessThan(0.1);
  });

  it('matches the Python reference on rendered scenes (logits and scores)', async () => {
    const fx = readSafetensors(new URL('./fixtures/scenes.safetensors', import.meta.url).pathname);
    const images = fx.get('images');
    const prompts = JSON.parse(fx.meta.prompts!) as string[];
    expect(images.shape).toEqual([prompts.length, 3, 32, 32]);
    const out = await reward.classify({ data: images.data as Uint8Array, shape: images.shape });
    for (const [name, got] of [['shape_logits', out.shapeLogits], ['color_logits', out.colorLogits], ['background_logits', out.backgroundLogits]] as const) {
      const want = fx.get(name).data as Float32Array;
      expect(got.length).toBe(want.length);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      expect(worst).toBeLessThan(1e-3);
    }
    const parsed = JSON.parse(fx.meta.parsed!) as unknown[];
    prompts.forEach((p, i) => expect(reward.parse(p)).toEqual(parsed[i]));
    const hard = await reward.score({ data: images.data as Uint8Array, shape: images.shape }, prompts);
    const soft = await reward.score({ data: images.data as Uint8Array, shape: images.shape }, prompts, { mode: 'soft' });
    const wantHard = fx.get('score_hard').data as Float32Array, wantSoft = fx.get('score_soft').data as Float32Array;
    for (let i = 0; i < prompts.length; i++) {
      expect(hard[i]).toBeCloseTo(wantHard[i]!, 6);
      expect(soft[i]).toBeCloseTo(wantSoft[i]!, 4);
    }
  });

  it('rejects bad inputs with clear errors', async () => {
    const img = flat([245, 245, 245]);
    await expect(reward.score({ data: img.data, shape: [1, 32, 32, 3] }, ['a red circle'])).rejects.toThrow(/3 channels.*NCHW/);
    await expect(reward.score({ data: img.data, shape: [2, 3, 32, 32] }, ['a', 'b'])).rejects.toThrow(/elements/);
    await expect(reward.score(img, ['a red circle', 'a blue square'])).rejects.toThrow(/one prompt string per image/);
    await expect(reward.score(flat([0, 0, 0], 1, 64, 64), ['a red circle'])).rejects.toThrow(/expects 32x32/);
    await expect(reward.score({ data: new Float32Array(3072) as unknown as Uint8Array, shape: [1, 3, 32, 32] }, ['x'])).rejects.toThrow(/Uint8Array/);
    await expect(reward.score({ data: img.data, shape: [1, 3, 32, 32], dtype: 'F32' }, ['x'])).rejects.toThrow(/uint8/);
  });
});

describe('jpeg compressibility reward (Flow-GRPO: PIL at quality 95, -kB / 500)', () => {
  // PIL's byte counts, from python/omni_ref/jpeg_sizes.py: embedded-model rollouts (two prompts,
  // eight seeds each) and seeded odd-size (17x33) images.
  const fixture = async () => parseSafetensors(new Uint8Array(readFileSync(new URL('./fixtures/jpeg-pil.safetensors', import.meta.url))));

  it("gives PIL's byte counts exactly, on rollouts and on odd sizes", async () => {
    const f = await fixture();
    for (const name of ['group', 'odd']) {
      const images = f.get(name) as ImageBatch;
      const pil = Array.from(f.get(`${name}_pil_bytes`).data as BigInt64Array, Number);
      expect(Array.from(await jpegSizes(images))).toEqual(pil);
    }
  });

  it('scores -(kB) / 500 of the PIL size, so a group ranks as in Flow-GRPO', async () => {
    const f = await fixture();
    const group = f.get('group') as ImageBatch;
    const pil = Array.from(f.get('group_pil_bytes').data as BigInt64Array, Number);
    const r = await jpegCompressibility(group);
    expect(r).toBeInstanceOf(Float32Array);
    expect(Array.from(r)).toEqual(pil.map((bytes) => Math.fround(-(bytes / 1000) / 500)));
    const rank = (xs: readonly number[]) => xs.map((_, i) => i).sort((a, b) => xs[a]! - xs[b]! || a - b);
    expect(rank(Array.from(r))).toEqual(rank(pil.map((b) => -b)));
  });

  it('scores noise lower than a flat image; a lower quality makes smaller files', async () => {
    const f = flat([128, 128, 128]);
    const noise = flat([0, 0, 0]);
    let s = 12345;
    for (let i = 0; i < noise.data.length; i++) { s = (s * 1103515245 + 12345) >>> 0; noise.data[i] = s >>> 24; }
    const both = { data: new Uint8Array([...f.data, ...noise.data]), shape: [2, 3, 32, 32] };
    const r = await jpegCompressibility(both);
    expect(r[0]!).toBeLessThan(0);
    expect(r[1]!).toBeLessThan(r[0]!);
    expect((await jpegSizes(both, 10))[1]!).toBeLessThan((await jpegSizes(both, 95))[1]!);
  });

  it('rejects bad inputs with clear errors', async () => {
    await expect(jpegCompressibility({ data: new Uint8Array(10), shape: [1, 3, 32, 32] })).rejects.toThrow(/elements/);
    await expect(jpegCompressibility({ data: new Uint8Array(3072), shape: [3, 32, 32] })).rejects.toThrow(/\[B, 3, H, W\]/);
    await expect(jpegCompressibility(flat([1, 2, 3]), 0)).rejects.toThrow(/quality must be an integer in \[1, 100\], got 0/);
    await expect(jpegCompressibility(flat([1, 2, 3]), 94.5)).rejects.toThrow(/quality/);
  });
});
