// The live curves of one job, or of several overlaid: train and validation loss, token accuracy,
// learning rate and gradient norm. uPlot draws them; charts/chartData.ts shapes the columns.
import { useMemo } from 'react';
import type { StepMetrics } from '../../train/metrics';
import { accuracySeries, gradNormSeries, learningRateSeries, lossSeries, overlaySeries, stepsOf, trainedAccuracy, trainedLoss, type OverlayJob } from '../charts/chartData';
import { MetricChart } from '../charts/MetricChart';
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
  const x = useMemo(() => stepsOf(metrics), [metrics]);
  const w = controls.smoothing;
  const loss = useMemo(() => lossSeries(metrics, w), [metrics, w]);
  const accuracy = useMemo(() => accuracySeries(metrics, w), [metrics, w]);
  const lr = useMemo(() => learningRateSeries(metrics), [metrics]);
  const grad = useMemo(() => gradNormSeries(metrics, w), [metrics, w]);
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

export type { OverlayJob };

/** Curves of several jobs on shared axes. */
export function CompareCharts({ jobs, controls }: { jobs: readonly OverlayJob[]; controls: ChartControls }) {
  const w = controls.smoothing;
  const train = useMemo(() => overlaySeries(jobs, trainedLoss, w, 'line'), [jobs, w]);
  const valid = useMemo(() => overlaySeries(jobs, (m) => m.validLoss, 0, 'line-points'), [jobs]);
  const acc = useMemo(() => overlaySeries(jobs, trainedAccuracy, w, 'line'), [jobs, w]);
  const lr = useMemo(() => overlaySeries(jobs, (m) => m.learningRate, 0, 'line'), [jobs]);
  return (
    <div className="chart-grid">
      <MetricChart title="Train loss" x={train.x} series={train.series} logScale={controls.logScale} testId="compare-train-loss" />
      <MetricChart title="Validation loss" x={valid.x} series={valid.series} logScale={controls.logScale} emptyText="No validation points" />
      <MetricChart title="Train token accuracy" x={acc.x} series={acc.series} format={pct} yRange={ACCURACY_RANGE} />
      <MetricChart title="Learning rate" x={lr.x} series={lr.series} format={formatReal} />
    </div>
  );
}
