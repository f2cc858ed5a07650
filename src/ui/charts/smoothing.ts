// Curve helpers for the charts. Pure functions: no React, no DOM.

/**
 * Exponential moving average with TensorBoard's debiasing, so the first points are not pulled
 * toward zero. `weight` in [0, 1): 0 returns the input. Missing values (null, NaN) stay missing
 * and do not reset the average.
 */
export function smoothEma(values: readonly (number | null | undefined)[], weight: number): (number | null)[] {
  const w = Math.min(Math.max(weight, 0), 0.999);
  const out: (number | null)[] = new Array<number | null>(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    if (w === 0) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - w ** n);
  }
  return out;
}

/** The column of a metric over rows, null where the row has none (uPlot draws a gap or a lone point). */
export function column<T>(rows: readonly T[], pick: (row: T) => number | null | undefined): (number | null)[] {
  return rows.map((r) => {
    const v = pick(r);
    return v === undefined || v === null || !Number.isFinite(v) ? null : v;
  });
}

/** How many finite values a column has. */
export function countPoints(values: readonly (number | null | undefined)[]): number {
  let n = 0;
  for (const v of values) if (v !== null && v !== undefined && Number.isFinite(v)) n++;
  return n;
}
