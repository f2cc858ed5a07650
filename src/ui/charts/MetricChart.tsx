// A uPlot chart in a fixed-height frame. uPlot owns the canvas and the hover legend; this
// component creates it when the series set, scale or theme changes and otherwise only feeds it
// new data, so a streaming job redraws without layout work.
import { useEffect, useMemo, useRef } from 'react';
import { useLatest } from '../useLatest';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useTheme } from '../theme';
import { defaultFormat, latestSummary, plotColumns, type ChartSeries } from './chartData';
import { countPoints } from './smoothing';

export type { ChartSeries, SeriesStyle } from './chartData';

interface Props {
  title: string;
  /** x values (optimizer steps), ascending. */
  x: number[];
  series: ChartSeries[];
  logScale?: boolean;
  height?: number;
  format?: (v: number) => string;
  xLabel?: string;
  /** A fixed y range (e.g. [0, 1] for accuracies); otherwise it fits the data. */
  yRange?: [number, number];
  testId?: string;
  /** Shown over the plot area when no series has a point. */
  emptyText?: string;
}

/**
 * A palette colour as the canvas needs it: the variables hold light-dark() pairs, which only an
 * element's computed colour resolves (for the page's current colour scheme).
 */
function cssVar(name: string): string {
  const probe = document.createElement('span');
  probe.style.color = `var(${name})`;
  document.documentElement.append(probe);
  const color = getComputedStyle(probe).color;
  probe.remove();
  return color || '#888';
}

export { defaultFormat };

/** The last value of a series: the legend shows it while the cursor is off the plot. */
function latestOf(u: uPlot, sidx: number): number | null {
  const col = u.data[sidx] as (number | null | undefined)[] | undefined;
  if (!col) return null;
  for (let i = col.length - 1; i >= 0; i--) {
    const v = col[i];
    if (v !== null && v !== undefined && Number.isFinite(v)) return v;
  }
  return null;
}

function seriesOptions(s: ChartSeries, color: string, format: (v: number) => string): uPlot.Series {
  const value = (u: uPlot, v: number | null, sidx: number, idx: number | null) => {
    const shown = idx === null ? latestOf(u, sidx) : v;
    return shown === null || shown === undefined ? '–' : format(shown);
  };
  const base: uPlot.Series = { label: s.label, stroke: color, value, show: s.show ?? true, spanGaps: true, width: 2 };
  switch (s.style) {
    case 'faint':
      return { ...base, stroke: color + '40', width: 1, points: { show: false } };
    case 'points':
      // Marks only: full-validation points at epoch ends.
      return { ...base, paths: () => null, points: { show: true, size: 9, stroke: color, fill: color, width: 1 } };
    case 'dots':
      return { ...base, paths: () => null, points: { show: true, size: 5, stroke: color, fill: color } };
    case 'line-points':
      return { ...base, points: { show: true, size: 5, stroke: color, fill: color } };
    case 'line':
      // uPlot's default shows the points only while they are sparse: a one-step job stays visible.
      return base;
    case 'bars':
      return { ...base, width: 1, fill: color + '99', paths: uPlot.paths.bars!({ size: [0.85, 80], align: 1 }), points: { show: false } };
  }
}

export function MetricChart({ title, x, series, logScale = false, height = 220, format = defaultFormat, xLabel = 'step', yRange, testId, emptyText }: Props) {
  const frame = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const { resolved } = useTheme();

  // Rebuild only when what the options depend on changes, not on every data update.
  const shapeKey = series.map((s) => `${s.label}|${s.color}|${s.style}|${s.show ?? true}`).join(';');
  const data = useMemo<uPlot.AlignedData>(() => plotColumns(x, series, logScale) as uPlot.AlignedData, [x, series, logScale]);
  const dataRef = useLatest(data);

  useEffect(() => {
    const el = frame.current;
    if (!el) return;
    const text = cssVar('--muted');
    const grid = cssVar('--border');
    const palette = Array.from({ length: 8 }, (_, i) => cssVar(`--chart-${i}`));
    const axis = (label?: string): uPlot.Axis => ({
      stroke: text,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      font: '11px system-ui, sans-serif',
      labelFont: '11px system-ui, sans-serif',
      ...(label ? { label, labelSize: 18 } : {}),
    });
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      series: [{ label: xLabel, value: (u, v, _s, idx) => (idx === null ? `${latestOf(u, 0) ?? '–'} (latest)` : v === null ? '–' : String(v)) }, ...series.map((s) => seriesOptions(s, palette[s.color % 8]!, format))],
      scales: {
        x: { time: false },
        // Bars stand on zero; other charts fit their data.
        y: logScale
          ? { distr: 3, log: 10 }
          : yRange
            ? { range: () => yRange }
            : series.some((s) => s.style === 'bars')
              ? { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] }
              : { auto: true },
      },
      axes: [axis(xLabel), { ...axis(), size: 56, values: (_u, vals) => vals.map((v) => (v === null ? '' : format(v))) }],
      cursor: { drag: { x: true, y: false }, points: { size: 7 } },
      legend: { show: true, live: true },
    };
    const u = new uPlot(opts, dataRef.current, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 1) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // series/format are read through shapeKey: data changes alone must not rebuild the chart.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shapeKey, logScale, height, resolved, xLabel, yRange?.[0], yRange?.[1]]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData(data, true);
    // Off the plot, the legend shows the newest values: refresh it for the new data.
    if (u.cursor.idx === null || u.cursor.idx === undefined) u.setLegend({ idxs: u.series.map(() => null) });
  }, [data]);

  const points = series.reduce((n, s) => n + countPoints(s.values), 0);
  const latest = latestSummary(x, series, format, xLabel);
  return (
    <figure className="chart" data-testid={testId} data-points={points}>
      <figcaption className="chart-title">{title}</figcaption>
      <div className="chart-frame" style={{ minHeight: height }}>
        <div ref={frame} className="chart-plot" />
        {points === 0 && <div className="chart-empty">{emptyText ?? 'No points yet'}</div>}
      </div>
      <p className="visually-hidden" aria-live="off">
        {latest || 'No data yet.'}
      </p>
    </figure>
  );
}
