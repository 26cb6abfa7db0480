// bench/fleet-grid.ts: the data-parallel grid's entries and the ratios reported from them (the
// benchmark's figures come from the GPU machine; these are the arithmetic and the parsing).
import { describe, expect, it } from 'vitest';
import { gridRows, parseGrid, type Measured } from '../bench/fleet-grid.ts';
import { pinnedAffinities } from '../bench/fleet-ceiling.ts';
import { sessionOptions } from '../core/model/execution-provider.ts';

describe('data-parallel grid', () => {
  it('parses WORKERSxTHREADS entries with options', () => {
    const [a, b] = parseGrid('1x4, 16x1+spin+session+all+pin');
    expect(a).toEqual({ label: '1x4', workers: 1, threads: 4, spin: false, session: false, all: false, pin: false });
    expect(b).toEqual({ label: '16x1+spin+session+all+pin', workers: 16, threads: 1, spin: true, session: true, all: true, pin: true });
  });

  it('refuses a malformed entry, an unknown option, zero workers or an empty grid, naming the entry', () => {
    expect(() => parseGrid('1x4,4by4')).toThrow(/--grid entry '4by4': expected WORKERSxTHREADS/);
    expect(() => parseGrid('4x4+fast')).toThrow(/--grid entry '4x4\+fast': unknown option 'fast'/);
    expect(() => parseGrid('0x4')).toThrow(/--grid entry '0x4': workers and threads must be at least 1/);
    expect(() => parseGrid(' , ')).toThrow(/--grid: no entries/);
  });

  it('compares each entry with one worker of the same shape, the bare loops with one loop, and both with the first entry', () => {
    const [one, four, eight, spin4] = parseGrid('1x4,4x4,8x2,4x4+spin');
    const measured: Measured[] = [
      { entry: one, imagesPerSecond: 20, ceiling: { one: 300, all: 300 } },
      { entry: four, imagesPerSecond: 60, ceiling: { one: 300, all: 1000, pinned: 1100 } },
      { entry: eight, imagesPerSecond: 90 },
      { entry: spin4, imagesPerSecond: 70, ceiling: { one: 320, all: 1200 } },
    ];
    const rows = gridRows(measured, 10);
    expect(rows[1].scaling).toBeCloseTo(3);
    expect(rows[1].ceilingScaling).toBeCloseTo(1000 / 300);
    expect(rows[1].ofCeiling).toBeCloseTo(3 / (1000 / 300));
    expect(rows[1].pinnedCeilingScaling).toBeCloseTo(1100 / 300);
    // 60 images/s of 10 steps: 600 transformer samples/s of the loops' 1000.
    expect(rows[1].ofBareRate).toBeCloseTo(0.6);
    // No 1x2 in the grid and no ceiling measured: only the comparison with the first entry.
    expect(rows[2]).toMatchObject({ scaling: undefined, ceilingScaling: undefined, ofCeiling: undefined, ofBareRate: undefined, vsFirst: 4.5 });
    // A spinning entry has no spinning one-worker entry to compare with.
    expect(rows[3].scaling).toBeUndefined();
    expect(rows[3].ceilingScaling).toBeCloseTo(1200 / 320);
  });

  it("pins each loop's pool threads to a block of its own (1-based ids, the loop's own thread left out)", () => {
    expect(pinnedAffinities(0, 4)).toBe('2;3;4');
    expect(pinnedAffinities(2, 4)).toBe('10;11;12');
    expect(pinnedAffinities(3, 1)).toBeUndefined();
  });
});

describe('ONNX Runtime thread options', () => {
  it('spinning is off unless asked for; affinities go to session.intra_op_thread_affinities', () => {
    const extra = (o: ReturnType<typeof sessionOptions>) => (o.extra as { session: Record<string, unknown> }).session;
    expect(extra(sessionOptions('cpu', 4))).toEqual({ intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } });
    expect(extra(sessionOptions('cpu', 4, undefined, { spinning: true, affinities: '2;3;4' }))).toEqual({
      intra_op: { allow_spinning: '1' }, inter_op: { allow_spinning: '1' }, intra_op_thread_affinities: '2;3;4',
    });
  });
});
