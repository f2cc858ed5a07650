import { describe, expect, it } from 'vitest';
import { learningRateAt, scheduleFactor, warmupStepsFromRatio, type ScheduleSpec } from '../../src/train/schedule';

// Expected values are transformers' lr_lambda formulas (optimization.py) worked by hand:
//   warmup:   step / max(1, warmup)                                  for step < warmup
//   constant: 1
//   linear:   max(0, (total - step) / max(1, total - warmup))
//   cosine:   max(0, 0.5 (1 + cos(pi * numCycles * 2 * (step - warmup) / max(1, total - warmup))))
const spec = (kind: ScheduleSpec['kind'], warmupSteps: number, totalSteps: number, numCycles?: number): ScheduleSpec => ({
  kind,
  baseLr: 1e-3,
  warmupSteps,
  totalSteps,
  ...(numCycles === undefined ? {} : { numCycles }),
});

function expectFactors(s: ScheduleSpec, want: Record<number, number>): void {
  for (const [step, f] of Object.entries(want)) {
    expect(scheduleFactor(s, Number(step)), `${s.kind} step ${step}`).toBeCloseTo(f, 12);
    expect(learningRateAt(s, Number(step)), `${s.kind} lr at step ${step}`).toBeCloseTo(1e-3 * f, 15);
  }
}

describe('learning-rate schedules', () => {
  it('constant with warmup: linear ramp from 0, then flat', () => {
    expectFactors(spec('constant', 4, 20), { 0: 0, 1: 0.25, 2: 0.5, 3: 0.75, 4: 1, 5: 1, 19: 1, 20: 1 });
    expectFactors(spec('constant', 0, 20), { 0: 1, 20: 1 });
  });

  it('linear: warmup to the peak, then linear decay to 0 at total steps', () => {
    const s = spec('linear', 10, 100);
    expectFactors(s, { 0: 0, 1: 0.1, 5: 0.5, 9: 0.9, 10: 1, 11: 89 / 90, 55: 0.5, 99: 1 / 90, 100: 0, 120: 0 });
    // No warmup: the first update uses the full rate.
    expectFactors(spec('linear', 0, 4), { 0: 1, 1: 0.75, 2: 0.5, 3: 0.25, 4: 0 });
  });

  it('cosine: half a wave from the peak to 0 by default', () => {
    expectFactors(spec('cosine', 0, 4), {
      0: 1,
      1: 0.5 * (1 + Math.SQRT1_2),
      2: 0.5,
      3: 0.5 * (1 - Math.SQRT1_2),
      4: 0,
    });
    expectFactors(spec('cosine', 10, 110), { 0: 0, 5: 0.5, 10: 1, 60: 0.5, 110: 0 });
    // transformers does not clamp progress: past the end the wave rises again (a trainer never goes there).
    expect(scheduleFactor(spec('cosine', 0, 4), 6)).toBeCloseTo(0.5, 12);
  });

  it('cosine with one full cycle returns to the peak at the end', () => {
    expectFactors(spec('cosine', 0, 8, 1), { 0: 1, 2: 0.5, 4: 0, 6: 0.5, 8: 1 });
  });

  it('warmup reaching the total leaves linear decay at 0 instead of dividing by 0', () => {
    const s = spec('linear', 5, 5);
    expectFactors(s, { 0: 0, 4: 0.8, 5: 0 });
    expect(Number.isFinite(scheduleFactor(spec('cosine', 5, 5), 5))).toBe(true);
  });

  it('warmup steps from a ratio round up, as transformers does', () => {
    expect(warmupStepsFromRatio(100, 0.03)).toBe(3);
    expect(warmupStepsFromRatio(10, 0.03)).toBe(1);
    expect(warmupStepsFromRatio(101, 0.1)).toBe(11);
    expect(warmupStepsFromRatio(100, 0)).toBe(0);
    expect(warmupStepsFromRatio(0, 0.5)).toBe(0);
  });
});
