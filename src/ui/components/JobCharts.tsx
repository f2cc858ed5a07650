// The live curves of one job, or of several overlaid: train and validation loss, token accuracy,
// learning rate and gradient norm. uPlot draws them; this file only shapes the columns.
import { useMemo } from 'react';
import type { StepMetrics } from '../../train/metrics';
import { MetricChart, type ChartSeries } from '../charts/MetricChart';
import { column, smoothEma } from '../charts/smoothing';
import { formatPercent, formatReal } from '../format';

export interface ChartControls {
  smoothing: number;
  logScale: boolean;
}

const pct = (v: number) => formatPercent(v, v === 0 || v === 1 ? 0 : 1);
const ACCURACY_RANGE: [number, number] = [0, 1];

export function ChartToolbar({ value, onChange, idPrefix }: { value: ChartControls; onChange: (c: ChartControls) => void; idPrefix: string }) {
  return (
    <div className="chart-toolbar" role="group" aria-label="Chart settings">
      <label className="inline-field" htmlFor={`${idPrefix}-smoothing`}>
        Smoothing
        <input
          id={`${idPrefix}-smoothing`}
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={value.smoothing}
          onChange={(e) => onChange({ ...value, smoothing: Number(e.target.value) })}
          data-testid="smoothing"
        />
        <output className="mono small" htmlFor={`${idPrefix}-smoothing`}>
          {value.smoothing.toFixed(2)}
        </output>
      </label>
      <label className="inline-field">
        <input type="checkbox" checked={value.logScale} onChange={(e) => onChange({ ...value, logScale: e.target.checked })} data-testid="log-scale" />
        Log scale (loss)
      </label>
    </div>
  );
}

/** The four charts of one job. */
export function JobCharts({ metrics, controls }: { metrics: readonly StepMetrics[]; controls: ChartControls }) {
  const x = useMemo(() => metrics.map((m) => m.step), [metrics]);
  const w = controls.smoothing;
  const loss = useMemo<ChartSeries[]>(() => {
    const raw = column(metrics, (m) => m.trainLoss);
    return [
      { label: 'Train loss', color: 0, style: 'line', values: smoothEma(raw, w) },
      { label: 'Train (raw)', color: 0, style: 'faint', values: raw, show: w > 0 },
      { label: 'Validation loss', color: 1, style: 'line-points', values: column(metrics, (m) => m.validLoss) },
      { label: 'Full validation', color: 3, style: 'points', values: column(metrics, (m) => m.fullValidLoss) },
    ];
  }, [metrics, w]);
  const accuracy = useMemo<ChartSeries[]>(() => {
    const raw = column(metrics, (m) => m.trainAccuracy);
    return [
      { label: 'Train accuracy', color: 0, style: 'line', values: smoothEma(raw, w) },
      { label: 'Train (raw)', color: 0, style: 'faint', values: raw, show: w > 0 },
      { label: 'Validation', color: 1, style: 'line-points', values: column(metrics, (m) => m.validAccuracy) },
      { label: 'Full validation', color: 3, style: 'points', values: column(metrics, (m) => m.fullValidAccuracy) },
    ];
  }, [metrics, w]);
  const lr = useMemo<ChartSeries[]>(() => [{ label: 'Learning rate', color: 2, style: 'line', values: column(metrics, (m) => m.learningRate) }], [metrics]);
  const grad = useMemo<ChartSeries[]>(() => {
    const raw = column(metrics, (m) => m.gradNorm);
    return [
      { label: 'Grad norm', color: 4, style: 'line', values: smoothEma(raw, w) },
      { label: 'Raw', color: 4, style: 'faint', values: raw, show: w > 0 },
    ];
  }, [metrics, w]);
  const waiting = 'Waiting for the first step';
  return (
    <div className="chart-grid">
      <MetricChart title="Loss" x={x} series={loss} logScale={controls.logScale} testId="chart-loss" emptyText={waiting} />
      <MetricChart title="Token accuracy" x={x} series={accuracy} format={pct} yRange={ACCURACY_RANGE} testId="chart-accuracy" emptyText={waiting} />
      <MetricChart title="Learning rate" x={x} series={lr} format={formatReal} testId="chart-lr" emptyText={waiting} />
      <MetricChart title="Gradient norm (before clipping)" x={x} series={grad} testId="chart-grad" emptyText={waiting} />
    </div>
  );
}

export interface OverlayJob {
  label: string;
  metrics: readonly StepMetrics[];
}

/** Columns of several jobs on the union of their steps. */
function overlay(jobs: readonly OverlayJob[], pick: (m: StepMetrics) => number | undefined, w: number, style: ChartSeries['style']): { x: number[]; series: ChartSeries[] } {
  const steps = new Set<number>();
  for (const j of jobs) for (const m of j.metrics) steps.add(m.step);
  const x = [...steps].sort((a, b) => a - b);
  const index = new Map(x.map((s, i) => [s, i]));
  const series = jobs.map((j, k): ChartSeries => {
    const values = new Array<number | null>(x.length).fill(null);
    const own = smoothEma(column(j.metrics, pick), w);
    j.metrics.forEach((m, i) => (values[index.get(m.step)!] = own[i]!));
    return { label: j.label, color: k, style, values };
  });
  return { x, series };
}

/** Curves of several jobs on shared axes. */
export function CompareCharts({ jobs, controls }: { jobs: readonly OverlayJob[]; controls: ChartControls }) {
  const w = controls.smoothing;
  const train = useMemo(() => overlay(jobs, (m) => m.trainLoss, w, 'line'), [jobs, w]);
  const valid = useMemo(() => overlay(jobs, (m) => m.validLoss, 0, 'line-points'), [jobs]);
  const acc = useMemo(() => overlay(jobs, (m) => m.trainAccuracy, w, 'line'), [jobs, w]);
  const lr = useMemo(() => overlay(jobs, (m) => m.learningRate, 0, 'line'), [jobs]);
  return (
    <div className="chart-grid">
      <MetricChart title="Train loss" x={train.x} series={train.series} logScale={controls.logScale} testId="compare-train-loss" />
      <MetricChart title="Validation loss" x={valid.x} series={valid.series} logScale={controls.logScale} emptyText="No validation points" />
      <MetricChart title="Train token accuracy" x={acc.x} series={acc.series} format={pct} yRange={ACCURACY_RANGE} />
      <MetricChart title="Learning rate" x={lr.x} series={lr.series} format={formatReal} />
    </div>
  );
}
