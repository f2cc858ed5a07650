// A stand-in for uPlot (which draws on a canvas happy-dom lacks): records what MetricChart gives
// it, so tests see the options and the data columns without drawing. Used with
// `vi.mock('uplot', () => import('<path>/fakeUplot'))`.
import type uPlot from 'uplot';

export const plots: FakeUplot[] = [];

/** The live plot drawn inside an element (a chart's figure). */
export function plotIn(root: Element): FakeUplot {
  const live = plots.filter((p) => !p.destroyed && root.contains(p.el));
  if (live.length !== 1) throw new Error(`expected one live plot, found ${live.length}`);
  return live[0]!;
}

export default class FakeUplot {
  static paths = { bars: () => () => null };
  readonly opts: uPlot.Options;
  data: uPlot.AlignedData;
  setDataCalls = 0;
  destroyed = false;
  width: number;
  cursor: { idx: number | null } = { idx: null };
  series: unknown[];
  /** The element uPlot was given to draw in. */
  readonly el: HTMLElement;

  constructor(opts: uPlot.Options, data: uPlot.AlignedData, el: HTMLElement) {
    this.el = el;
    this.opts = opts;
    this.data = data;
    this.width = opts.width;
    this.series = opts.series;
    plots.push(this);
  }

  setData(data: uPlot.AlignedData): void {
    this.data = data;
    this.setDataCalls++;
  }

  setSize(size: { width: number; height: number }): void {
    this.width = size.width;
  }

  setLegend(): void {}

  destroy(): void {
    this.destroyed = true;
  }
}
