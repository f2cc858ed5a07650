// The charts' data handling (src/ui/charts/chartData.ts and smoothing.ts): smoothing, log scale,
// alignment of several jobs on one x axis, full-validation marks at epoch ends. uPlot itself
// needs a canvas and is not run here.
import { describe, expect, it } from 'vitest';

import type { StepMetrics } from '../../../src/train/metrics';
import {
  accuracySeries,
  defaultFormat,
  gradNormSeries,
  latestSummary,
  learningRateSeries,
  lossSeries,
  overlaySeries,
  plotColumns,
  stepsOf,
  trainedLoss,
  type ChartSeries,
} from '../../../src/ui/charts/chartData';
import { column, countPoints, smoothEma } from '../../../src/ui/charts/smoothing';

function row(step: number, extra: Partial<StepMetrics> = {}): StepMetrics {
  return {
    step,
    epoch: 1,
    trainLoss: 3 - step * 0.1,
    trainAccuracy: 0.1 * step,
    trainTokens: 100,
    learningRate: 2e-4,
    gradNorm: 1 + step,
    tokensPerSecond: 500,
    elapsedMs: step * 1000,
    etaMs: null,
    gpuBytes: 1 << 20,
    ...extra,
  };
}

const byLabel = (series: ChartSeries[], label: string) => {
  const s = series.find((x) => x.label === label);
  if (!s) throw new Error(`no series ${label}`);
  return s;
};

describe('smoothEma', () => {
  it('debiases the first point and follows TensorBoard’s recurrence', () => {
    const out = smoothEma([1, 2, 3], 0.5);
    // last_n = 0.5 last_{n-1} + 0.5 v_n, divided by 1 - 0.5^n.
    expect(out[0]).toBeCloseTo(1, 12);
    expect(out[1]).toBeCloseTo(1.25 / 0.75, 12);
    expect(out[2]).toBeCloseTo((0.5 * 1.25 + 0.5 * 3) / 0.875, 12);
  });

  it('keeps gaps as gaps without resetting the average, and weight 0 is the identity', () => {
    const out = smoothEma([2, null, NaN, 4], 0.5);
    expect(out[1]).toBeNull();
    expect(out[2]).toBeNull();
    // The 4 is the second point seen: (0.5 * 1 + 0.5 * 4) / (1 - 0.25).
    expect(out[3]).toBeCloseTo(2.5 / 0.75, 12);
    expect(smoothEma([5, null, 7], 0)).toEqual([5, null, 7]);
  });

  it('clamps the weight below 1 so the curve never freezes', () => {
    const out = smoothEma([1, 100], 1);
    expect(out[1]).not.toBe(1);
    expect(out[1]).toBeGreaterThan(1);
  });

  it('column drops missing and non-finite values; countPoints counts finite ones', () => {
    const rows = [{ v: 1 }, { v: undefined }, { v: Infinity }, { v: 0 }];
    expect(column(rows, (r) => r.v)).toEqual([1, null, null, 0]);
    expect(countPoints([1, null, undefined, NaN, 0])).toBe(2);
  });
});

describe('one job’s series', () => {
  const metrics = [row(1), row(2, { validLoss: 2.5, validAccuracy: 0.3 }), row(3), row(4, { epoch: 1, validLoss: 2.2, validAccuracy: 0.35, fullValidLoss: 2.1, fullValidAccuracy: 0.4 }), row(5, { epoch: 2 })];

  it('x is the steps, and every series has one value per step', () => {
    expect(stepsOf(metrics)).toEqual([1, 2, 3, 4, 5]);
    for (const s of [...lossSeries(metrics, 0.6), ...accuracySeries(metrics, 0.6), ...learningRateSeries(metrics), ...gradNormSeries(metrics, 0.6)]) {
      expect(s.values).toHaveLength(5);
    }
  });

  it('loss: smoothed train curve over the raw one, validation where measured, full validation at the epoch end only', () => {
    const series = lossSeries(metrics, 0.6);
    expect(series.map((s) => [s.label, s.style])).toEqual([
      ['Train loss', 'line'],
      ['Train (raw)', 'faint'],
      ['Validation loss', 'line-points'],
      ['Full validation', 'points'],
    ]);
    const raw = metrics.map((m) => m.trainLoss);
    expect(byLabel(series, 'Train (raw)').values).toEqual(raw);
    expect(byLabel(series, 'Train loss').values).toEqual(smoothEma(raw, 0.6));
    expect(byLabel(series, 'Train loss').values[1]).not.toBe(raw[1]);
    expect(byLabel(series, 'Train (raw)').show).toBe(true);
    expect(byLabel(series, 'Validation loss').values).toEqual([null, 2.5, null, 2.2, null]);
    expect(byLabel(series, 'Full validation').values).toEqual([null, null, null, 2.1, null]);
  });

  it('without smoothing the train curve is the raw values and the raw copy leaves the legend', () => {
    const series = lossSeries(metrics, 0);
    expect(byLabel(series, 'Train loss').values).toEqual(metrics.map((m) => m.trainLoss));
    expect(byLabel(series, 'Train (raw)').show).toBe(false);
    expect(byLabel(gradNormSeries(metrics, 0), 'Raw').show).toBe(false);
  });

  it('accuracy, learning rate and gradient norm read their own fields', () => {
    const acc = accuracySeries(metrics, 0);
    expect(byLabel(acc, 'Train accuracy').values).toEqual([0.1, 0.2, 0.1 * 3, 0.4, 0.5]);
    expect(byLabel(acc, 'Validation').values).toEqual([null, 0.3, null, 0.35, null]);
    expect(byLabel(acc, 'Full validation').values).toEqual([null, null, null, 0.4, null]);
    expect(learningRateSeries(metrics)[0]!.values).toEqual([2e-4, 2e-4, 2e-4, 2e-4, 2e-4]);
    expect(byLabel(gradNormSeries(metrics, 0.5), 'Raw').values).toEqual([2, 3, 4, 5, 6]);
    expect(byLabel(gradNormSeries(metrics, 0.5), 'Grad norm').values).toEqual(smoothEma([2, 3, 4, 5, 6], 0.5));
  });

  it('a diverged step (NaN loss) is a gap, not a point that breaks the axis', () => {
    const series = lossSeries([row(1), row(2, { trainLoss: NaN }), row(3)], 0);
    expect(byLabel(series, 'Train loss').values).toEqual([2.9, null, 2.7]);
  });

  it('a step that trained no token is a gap in loss and accuracy, never a 0', () => {
    const metrics = [row(1), row(2, { trainTokens: 0, trainLoss: 0, trainAccuracy: 0 }), row(3)];
    expect(byLabel(lossSeries(metrics, 0), 'Train loss').values).toEqual([2.9, null, 2.7]);
    expect(byLabel(accuracySeries(metrics, 0), 'Train accuracy').values).toEqual([0.1, null, expect.closeTo(0.3, 12)]);
    // Smoothing skips the gap instead of pulling the curve toward 0.
    expect(byLabel(lossSeries(metrics, 0.5), 'Train loss').values).toEqual(smoothEma([2.9, null, 2.7], 0.5));
    const overlay = overlaySeries([{ label: 'a', metrics }], trainedLoss, 0, 'line');
    expect(overlay.series[0]!.values).toEqual([2.9, null, 2.7]);
  });

  it('a validation pass with no trained token (NaN loss) shows neither its loss nor its accuracy', () => {
    const metrics = [row(1, { validLoss: NaN, validAccuracy: 0, fullValidLoss: NaN, fullValidAccuracy: 0 }), row(2, { validLoss: 2, validAccuracy: 0.5 })];
    expect(byLabel(lossSeries(metrics, 0), 'Validation loss').values).toEqual([null, 2]);
    expect(byLabel(accuracySeries(metrics, 0), 'Validation').values).toEqual([null, 0.5]);
    expect(byLabel(accuracySeries(metrics, 0), 'Full validation').values).toEqual([null, null]);
  });
});

describe('overlaySeries (job comparison)', () => {
  const a = { label: 'job a', metrics: [row(1, { trainLoss: 4 }), row(2, { trainLoss: 3 }), row(3, { trainLoss: 2 })] };
  const b = { label: 'job b', metrics: [row(2, { trainLoss: 5 }), row(4, { trainLoss: 1 })] };

  it('puts every job on the sorted union of steps, null where a job has no step', () => {
    const { x, series } = overlaySeries([b, a], (m) => m.trainLoss, 0, 'line');
    expect(x).toEqual([1, 2, 3, 4]);
    expect(series.map((s) => [s.label, s.color, s.style])).toEqual([
      ['job b', 0, 'line'],
      ['job a', 1, 'line'],
    ]);
    expect(series[0]!.values).toEqual([null, 5, null, 1]);
    expect(series[1]!.values).toEqual([4, 3, 2, null]);
  });

  it('smooths each job over its own points, so another job’s steps do not change its curve', () => {
    const alone = overlaySeries([b], (m) => m.trainLoss, 0.5, 'line');
    const together = overlaySeries([a, b], (m) => m.trainLoss, 0.5, 'line');
    const smoothedB = smoothEma([5, 1], 0.5);
    expect(alone.series[0]!.values).toEqual(smoothedB);
    expect(together.series[1]!.values).toEqual([null, smoothedB[0], null, smoothedB[1]]);
  });

  it('a metric a job never measured is an all-null series; no jobs is an empty chart', () => {
    const { series } = overlaySeries([a], (m) => m.validLoss, 0, 'line-points');
    expect(series[0]!.values).toEqual([null, null, null]);
    expect(overlaySeries([], (m) => m.trainLoss, 0, 'line')).toEqual({ x: [], series: [] });
  });
});

describe('plotColumns and latestSummary', () => {
  const series: ChartSeries[] = [
    { label: 'Train loss', color: 0, style: 'line', values: [2, 0, -1, 0.5] },
    { label: 'Validation loss', color: 1, style: 'line-points', values: [null, 1.5, null, null] },
    { label: 'Hidden', color: 2, style: 'faint', values: [9, 9, 9, 9], show: false },
  ];

  it('aligns [x, ...series]; a log scale turns values <= 0 into gaps and keeps the rest', () => {
    const x = [10, 20, 30, 40];
    expect(plotColumns(x, series, false)).toEqual([x, [2, 0, -1, 0.5], [null, 1.5, null, null], [9, 9, 9, 9]]);
    expect(plotColumns(x, series, true)).toEqual([x, [2, null, null, 0.5], [null, 1.5, null, null], [9, 9, 9, 9]]);
    // The caller's series are not modified.
    expect(series[0]!.values).toEqual([2, 0, -1, 0.5]);
  });

  it('summarises the last point of each shown series for screen readers', () => {
    expect(latestSummary([10, 20, 30, 40], series, (v) => v.toFixed(1), 'step')).toBe('Train loss 0.5 at step 40; Validation loss 1.5 at step 20');
    expect(latestSummary([], [{ label: 'Empty', color: 0, style: 'line', values: [] }], String, 'step')).toBe('');
  });

  it('defaultFormat: four significant digits, whole numbers from 1000 (a tick at 1000 is not "1"), exponents outside [1e-3, 1e5)', () => {
    expect(defaultFormat(1.23456)).toBe('1.235');
    expect(defaultFormat(2.5)).toBe('2.5');
    expect(defaultFormat(100)).toBe('100');
    expect(defaultFormat(10)).toBe('10');
    expect(defaultFormat(1000)).toBe('1000');
    expect(defaultFormat(999.99)).toBe('1000');
    expect(defaultFormat(12345.6)).toBe('12346');
    expect(defaultFormat(-2500)).toBe('-2500');
    expect(defaultFormat(0)).toBe('0');
    expect(defaultFormat(0.0001234)).toBe('1.23e-4');
    expect(defaultFormat(123456)).toBe('1.23e+5');
    expect(defaultFormat(Infinity)).toBe('Infinity');
  });
});
