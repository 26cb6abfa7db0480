// The GPU benchmarks' arithmetic (bench/derived-figures.ts): the switch benchmark's request order
// and the switch cost taken from it, and the share of device memory a sleep gives back.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { labelTransitions, sleepMemory, switchCosts, switchOrder } from '../bench/derived-figures.ts';

const names = fc.uniqueArray(fc.constantFrom('', 'a', 'b', 'c', 'd'), { minLength: 2, maxLength: 5 });

describe('switchOrder', () => {
  it('requests every name as often right after another name as right after itself', () => {
    fc.assert(fc.property(names, fc.integer({ min: 1, max: 6 }), (ns, reps) => {
      const order = switchOrder(ns, reps);
      expect(order).toHaveLength(2 * ns.length * reps);
      for (const n of ns) {
        const into = labelTransitions(order, order.map(() => 0)).filter((r) => r.to === n);
        const switched = into.filter((r) => r.from !== n).length;
        const stayed = into.filter((r) => r.from === n).length;
        expect(stayed).toBe(reps);
        // The very first request has no predecessor: the first name loses one switch.
        expect(switched).toBe(n === ns[0] ? reps - 1 : reps);
      }
    }));
  });

  it('refuses fewer than two names, naming them', () => {
    expect(() => switchOrder(['a'], 3)).toThrow(/at least two names.*\["a"\]/);
  });
});

describe('labelTransitions', () => {
  it('pairs each request after the first with the one before it', () => {
    expect(labelTransitions(['a', 'a', 'b'], [9, 1, 2])).toEqual([{ from: 'a', to: 'a', seconds: 1 }, { from: 'a', to: 'b', seconds: 2 }]);
  });

  it('refuses timings that do not match the requests', () => {
    expect(() => labelTransitions(['a', 'b'], [1])).toThrow(/2 requests but 1 timings/);
  });
});

describe('switchCosts', () => {
  it('is the median after another adapter minus the median after the same, per target and over all', () => {
    fc.assert(fc.property(fc.double({ min: 0.001, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.1, noNaN: true }), fc.integer({ min: 1, max: 4 }), (t, extra, reps) => {
      const order = switchOrder(['a', 'b', ''], reps);
      const seconds = order.map((n, i) => (i > 0 && order[i - 1] !== n ? t + extra : t));
      const costs = switchCosts(labelTransitions(order, seconds));
      for (const k of ['a', 'b', 'base', 'all'] as const) {
        if (k === 'a' && reps === 1) { expect(costs.a).toBeUndefined(); continue; } // 'a' never follows another name
        expect(costs[k].afterSame).toBeCloseTo(t, 12);
        expect(costs[k].afterOther).toBeCloseTo(t + extra, 12);
        expect(costs[k].overheadMs).toBeCloseTo(extra * 1000, 9);
      }
    }));
  });

  it('names the base model "base"', () => {
    const costs = switchCosts([{ from: 'a', to: '', seconds: 3 }, { from: '', to: '', seconds: 1 }]);
    expect(Object.keys(costs).sort()).toEqual(['all', 'base']);
    expect(costs.base.overheadMs).toBe(2000);
  });
});

describe('sleepMemory', () => {
  it('is the share of the process footprint freed, and the footprint at which the residue is 5%', () => {
    // The 1024x12 figures of BENCHMARKS.md: 3687 MiB awake, 603 asleep, nothing before.
    const m = sleepMemory(0, 3687, 603)!;
    expect(m.footprintMiB).toBe(3687);
    expect(m.residueMiB).toBe(603);
    expect(m.freedFraction).toBeCloseTo(3084 / 3687, 12);
    expect(m.goalFootprintMiB).toBe(12060);
  });

  it('counts memory other processes held before the worker as neither footprint nor residue', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e5 }), fc.integer({ min: 1, max: 1e5 }), fc.integer({ min: 0, max: 1e5 }), (before, foot, residue) => {
      fc.pre(residue <= foot);
      const m = sleepMemory(before, before + foot, before + residue)!;
      expect(m.footprintMiB).toBe(foot);
      expect(m.residueMiB).toBe(residue);
      expect(m.freedFraction).toBeCloseTo(1 - residue / foot, 12);
      // At the goal footprint the same residue is at most 5% of it.
      expect(m.residueMiB).toBeLessThanOrEqual(0.05 * m.goalFootprintMiB + 1e-9);
      expect(m.residueMiB).toBeGreaterThan(0.05 * (m.goalFootprintMiB - 1) - 1e-9); // and the smallest such
    }));
  });

  it('is undefined without a reading (no nvidia-smi), and refuses an awake reading not above the one before', () => {
    expect(sleepMemory(undefined, 10, 5)).toBeUndefined();
    expect(sleepMemory(0, 10, undefined)).toBeUndefined();
    expect(() => sleepMemory(500, 500, 500)).toThrow(/awake reading 500 MiB is not above the reading before the worker \(500 MiB\)/);
  });
});
