// @vitest-environment happy-dom
// MetricChart and the job charts with uPlot replaced by a recorder (test/ui/fakeUplot.ts): what
// data and scales reach the plot, when the plot is rebuilt rather than fed, and the text around it.
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { StepMetrics } from '../../../src/train/metrics';
import type { ChartSeries } from '../../../src/ui/charts/chartData';
import { MetricChart } from '../../../src/ui/charts/MetricChart';
import { smoothEma } from '../../../src/ui/charts/smoothing';
import { ChartToolbar, CompareCharts, JobCharts, type ChartControls } from '../../../src/ui/components/JobCharts';
import { plotIn, plots } from '../fakeUplot';

vi.mock('uplot', () => import('../fakeUplot'));

beforeEach(() => {
  plots.length = 0;
});
afterEach(cleanup);

function row(step: number, extra: Partial<StepMetrics> = {}): StepMetrics {
  return { step, epoch: 1, trainLoss: 4 / step, trainAccuracy: 0.2, trainTokens: 10, learningRate: 1e-4, gradNorm: 2, tokensPerSecond: 100, elapsedMs: 0, etaMs: null, gpuBytes: 0, ...extra };
}

const line = (values: (number | null)[], label = 'Loss'): ChartSeries => ({ label, color: 0, style: 'line', values });
const plotTitled = (title: string) => {
  const figure = screen.getByText(title, { selector: 'figcaption' }).closest('figure')!;
  return { figure, plot: plotIn(figure) };
};

describe('MetricChart', () => {
  it('hands uPlot the aligned columns and says the latest values in text', () => {
    render(<MetricChart title="Loss" x={[1, 2, 3]} series={[line([3, 2, 1.5]), line([null, 2.5, null], 'Validation')]} testId="c" />);
    expect(plots).toHaveLength(1);
    expect(plots[0]!.data).toEqual([[1, 2, 3], [3, 2, 1.5], [null, 2.5, null]]);
    expect(plots[0]!.opts.series.map((s) => s.label)).toEqual(['step', 'Loss', 'Validation']);
    const figure = screen.getByTestId('c');
    expect(figure.getAttribute('data-points')).toBe('4');
    expect(figure.querySelector('.visually-hidden')!.textContent).toBe('Loss 1.5 at step 3; Validation 2.5 at step 2');
    expect(screen.queryByText('No points yet')).toBeNull();
  });

  it('a log scale uses uPlot’s log distribution and turns values <= 0 into gaps', () => {
    render(<MetricChart title="Loss" x={[1, 2, 3]} series={[line([0, 2, -1])]} logScale />);
    expect(plots[0]!.opts.scales!.y).toEqual({ distr: 3, log: 10 });
    expect(plots[0]!.data).toEqual([[1, 2, 3], [null, 2, null]]);
  });

  it('streaming rows only feed new data; a new scale or series set rebuilds the plot', () => {
    const { rerender } = render(<MetricChart title="Loss" x={[1]} series={[line([3])]} />);
    const first = plots[0]!;
    rerender(<MetricChart title="Loss" x={[1, 2]} series={[line([3, 2])]} />);
    expect(plots).toHaveLength(1);
    expect(first.destroyed).toBe(false);
    expect(first.data).toEqual([[1, 2], [3, 2]]);
    expect(first.setDataCalls).toBeGreaterThanOrEqual(1);

    rerender(<MetricChart title="Loss" x={[1, 2]} series={[line([3, 2])]} logScale />);
    expect(first.destroyed).toBe(true);
    expect(plots).toHaveLength(2);
    expect(plots[1]!.opts.scales!.y).toEqual({ distr: 3, log: 10 });

    rerender(<MetricChart title="Loss" x={[1, 2]} series={[line([3, 2]), line([null, 1], 'Validation')]} logScale />);
    expect(plots[1]!.destroyed).toBe(true);
    expect(plots).toHaveLength(3);
  });

  it('an empty chart says so; a fixed range and bars-from-zero reach the y scale', () => {
    render(<MetricChart title="Accuracy" x={[]} series={[line([])]} yRange={[0, 1]} emptyText="Waiting for the first step" />);
    expect(screen.getByText('Waiting for the first step')).toBeTruthy();
    expect(screen.getByText('No data yet.')).toBeTruthy();
    const range = plots[0]!.opts.scales!.y!.range as () => [number, number];
    expect(range()).toEqual([0, 1]);
    cleanup();

    render(<MetricChart title="Histogram" x={[0, 10]} series={[{ label: 'Examples', color: 1, style: 'bars', values: [4, 7] }]} />);
    const bars = plots[1]!.opts.scales!.y!.range as (u: unknown, min: number, max: number) => [number, number];
    expect(bars(null, 4, 7)).toEqual([0, 7 * 1.1]);
    expect(bars(null, 0, 0.5)).toEqual([0, 1]);
  });
});

describe('JobCharts with its toolbar', () => {
  function Harness({ metrics }: { metrics: StepMetrics[] }) {
    const [controls, setControls] = useState<ChartControls>({ smoothing: 0, logScale: false });
    return (
      <>
        <ChartToolbar value={controls} onChange={setControls} idPrefix="t" />
        <JobCharts metrics={metrics} controls={controls} />
      </>
    );
  }
  const metrics = [row(1), row(2, { validLoss: 2.5 }), row(3), row(4, { validLoss: 2, fullValidLoss: 1.9, fullValidAccuracy: 0.5 })];

  it('draws loss, accuracy, learning rate and gradient norm over the steps', () => {
    render(<Harness metrics={metrics} />);
    expect([...document.querySelectorAll('figcaption')].map((f) => f.textContent)).toEqual(['Loss', 'Token accuracy', 'Learning rate', 'Gradient norm (before clipping)']);
    const loss = plotTitled('Loss').plot;
    expect(loss.data[0]).toEqual([1, 2, 3, 4]);
    expect(loss.data.slice(1)).toEqual([[4, 2, 4 / 3, 1], [4, 2, 4 / 3, 1], [null, 2.5, null, 2], [null, null, null, 1.9]]);
    expect(screen.getByTestId('chart-loss').getAttribute('data-points')).toBe(String(4 + 4 + 2 + 1));
    expect(plotTitled('Token accuracy').plot.data[4]).toEqual([null, null, null, 0.5]);
    expect(plotTitled('Learning rate').plot.data[1]).toEqual([1e-4, 1e-4, 1e-4, 1e-4]);
  });

  it('the smoothing slider smooths the train curves and the log-scale box applies to the loss chart only', () => {
    render(<Harness metrics={metrics} />);
    fireEvent.change(screen.getByTestId('smoothing'), { target: { value: '0.6' } });
    expect(screen.getByText('0.60', { selector: 'output' })).toBeTruthy();
    const loss = plotTitled('Loss').plot;
    expect(loss.data[1]).toEqual(smoothEma([4, 2, 4 / 3, 1], 0.6));
    expect(loss.data[2]).toEqual([4, 2, 4 / 3, 1]);

    act(() => (screen.getByTestId('log-scale') as HTMLInputElement).click());
    expect((screen.getByTestId('log-scale') as HTMLInputElement).checked).toBe(true);
    expect(plotTitled('Loss').plot.opts.scales!.y).toEqual({ distr: 3, log: 10 });
    expect(plotTitled('Token accuracy').plot.opts.scales!.y).not.toHaveProperty('distr');
    expect(plotTitled('Gradient norm (before clipping)').plot.opts.scales!.y).toEqual({ auto: true });
  });

  it('before the first step every chart waits', () => {
    render(<Harness metrics={[]} />);
    expect(screen.getAllByText('Waiting for the first step')).toHaveLength(4);
  });
});

describe('CompareCharts', () => {
  it('overlays the jobs on the union of their steps, one series per job', () => {
    const jobs = [
      { label: 'ft:a', metrics: [row(1, { trainLoss: 3 }), row(2, { trainLoss: 2, validLoss: 2.2 })] },
      { label: 'ft:b', metrics: [row(2, { trainLoss: 4 }), row(3, { trainLoss: 1 })] },
    ];
    render(<CompareCharts jobs={jobs} controls={{ smoothing: 0, logScale: true }} />);
    const train = plotTitled('Train loss').plot;
    expect(train.opts.series.map((s) => s.label)).toEqual(['step', 'ft:a', 'ft:b']);
    expect(train.data).toEqual([[1, 2, 3], [3, 2, null], [null, 4, 1]]);
    expect(train.opts.scales!.y).toEqual({ distr: 3, log: 10 });
    const valid = plotTitled('Validation loss').plot;
    expect(valid.data).toEqual([[1, 2, 3], [null, 2.2, null], [null, null, null]]);
  });
});
