// The data side of the charts: which series a job's metrics make, how several jobs share one x
// axis, what a log scale drops, and the text summary read by screen readers. Pure functions (no
// React, no uPlot, no DOM), so they are tested without a canvas.
import { trainedStep, type StepMetrics } from '../../train/metrics';
import { column, smoothEma } from './smoothing';

export type SeriesStyle = 'line' | 'faint' | 'points' | 'line-points' | 'dots' | 'bars';

export interface ChartSeries {
  label: string;
  /** Index into the chart palette (--chart-0 ... --chart-7). */
  color: number;
  style: SeriesStyle;
  /** Values per x; null where the series has no point. */
  values: (number | null)[];
  /** Hidden in the legend (e.g. the raw curve under a smoothed one). */
  show?: boolean;
}

/** Axis and legend numbers when a chart has no format of its own: 4 significant digits (whole numbers from 1000), exponents for tiny or huge values. */
export function defaultFormat(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  // toPrecision(4) writes 12345 as "1.235e+4", and only zeros after a point may be trimmed ("1000" stays).
  if (a >= 1e3) return String(Math.round(v));
  const s = v.toPrecision(4);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** The x column of one job's charts: its optimizer steps. */
export function stepsOf(metrics: readonly StepMetrics[]): number[] {
  return metrics.map((m) => m.step);
}

/** A step's train loss, undefined (a gap, not a 0) when it trained no token. */
export const trainedLoss = (m: StepMetrics): number | undefined => trainedStep(m)?.loss;
/** A step's train accuracy, undefined when it trained no token. */
export const trainedAccuracy = (m: StepMetrics): number | undefined => trainedStep(m)?.accuracy;

/**
 * A smoothed train curve with the raw one faint beneath it (shown in the legend only while
 * smoothing is on), the validation-batch curve, and the full-validation marks at epoch ends.
 */
function trainAndValidation(
  metrics: readonly StepMetrics[],
  smoothing: number,
  labels: [train: string, valid: string],
  pick: { train: (m: StepMetrics) => number | undefined; valid: (m: StepMetrics) => number | undefined; full: (m: StepMetrics) => number | undefined },
): ChartSeries[] {
  const raw = column(metrics, pick.train);
  return [
    { label: labels[0], color: 0, style: 'line', values: smoothEma(raw, smoothing) },
    { label: 'Train (raw)', color: 0, style: 'faint', values: raw, show: smoothing > 0 },
    { label: labels[1], color: 1, style: 'line-points', values: column(metrics, pick.valid) },
    { label: 'Full validation', color: 3, style: 'points', values: column(metrics, pick.full) },
  ];
}

export function lossSeries(metrics: readonly StepMetrics[], smoothing: number): ChartSeries[] {
  return trainAndValidation(metrics, smoothing, ['Train loss', 'Validation loss'], { train: trainedLoss, valid: (m) => m.validLoss, full: (m) => m.fullValidLoss });
}

export function accuracySeries(metrics: readonly StepMetrics[], smoothing: number): ChartSeries[] {
  // A validation pass with no trained token has a NaN loss and a meaningless accuracy: both left out.
  const validAccuracy = (m: StepMetrics) => (m.validLoss !== undefined && Number.isFinite(m.validLoss) ? m.validAccuracy : undefined);
  const fullAccuracy = (m: StepMetrics) => (m.fullValidLoss !== undefined && Number.isFinite(m.fullValidLoss) ? m.fullValidAccuracy : undefined);
  return trainAndValidation(metrics, smoothing, ['Train accuracy', 'Validation'], { train: trainedAccuracy, valid: validAccuracy, full: fullAccuracy });
}

export function learningRateSeries(metrics: readonly StepMetrics[]): ChartSeries[] {
  return [{ label: 'Learning rate', color: 2, style: 'line', values: column(metrics, (m) => m.learningRate) }];
}

export function gradNormSeries(metrics: readonly StepMetrics[], smoothing: number): ChartSeries[] {
  const raw = column(metrics, (m) => m.gradNorm);
  return [
    { label: 'Grad norm', color: 4, style: 'line', values: smoothEma(raw, smoothing) },
    { label: 'Raw', color: 4, style: 'faint', values: raw, show: smoothing > 0 },
  ];
}

export interface OverlayJob {
  label: string;
  metrics: readonly StepMetrics[];
}

/**
 * Columns of several jobs on the union of their steps, one series per job (palette colour = its
 * position). Each job is smoothed over its own points before alignment, so another job's extra
 * steps do not change its curve; steps a job lacks are null.
 */
export function overlaySeries(jobs: readonly OverlayJob[], pick: (m: StepMetrics) => number | undefined, smoothing: number, style: SeriesStyle): { x: number[]; series: ChartSeries[] } {
  const steps = new Set<number>();
  for (const j of jobs) for (const m of j.metrics) steps.add(m.step);
  const x = [...steps].sort((a, b) => a - b);
  const index = new Map(x.map((s, i) => [s, i]));
  const series = jobs.map((j, k): ChartSeries => {
    const values = new Array<number | null>(x.length).fill(null);
    const own = smoothEma(column(j.metrics, pick), smoothing);
    j.metrics.forEach((m, i) => (values[index.get(m.step)!] = own[i]!));
    return { label: j.label, color: k, style, values };
  });
  return { x, series };
}

/** uPlot's aligned columns [x, ...series]; on a log scale values <= 0 become gaps rather than breaking the range. */
export function plotColumns(x: readonly number[], series: readonly ChartSeries[], logScale: boolean): [number[], ...(number | null)[][]] {
  const cols = series.map((s) => (logScale ? s.values.map((v) => (v !== null && v > 0 ? v : null)) : s.values));
  return [x as number[], ...cols];
}

/** "Train loss 1.2 at step 40; Validation loss 1.5 at step 35": each shown series' last point. */
export function latestSummary(x: readonly number[], series: readonly ChartSeries[], format: (v: number) => string, xLabel: string): string {
  return series
    .filter((s) => s.show ?? true)
    .map((s) => {
      for (let i = s.values.length - 1; i >= 0; i--) {
        const v = s.values[i];
        if (v !== null && v !== undefined) return `${s.label} ${format(v)} at ${xLabel} ${x[i]}`;
      }
      return null;
    })
    .filter(Boolean)
    .join('; ');
}
