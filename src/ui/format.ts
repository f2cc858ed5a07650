// Number formatting for the UI. Pure functions: no React, no GPU.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 134217728 -> "128 MiB"; keeps up to one decimal when the value is not a whole unit. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return String(bytes);
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(1).replace(/\.0$/, '');
  return `${text} ${UNITS[u]}`;
}

/** 65535 -> "65,535". */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A relative error for the results table: "3.12e-7", "0", or "∞" for a failed run. */
export function formatError(e: number): string {
  if (e === 0) return '0';
  if (!Number.isFinite(e)) return '∞';
  return e.toExponential(2);
}

/** A bound: "1e-6" rather than "1.00e-6"; "0" for exact cases. */
export function formatBound(tol: number): string {
  if (tol === 0) return '0';
  return tol.toExponential().replace('e+', 'e');
}

export function formatMs(ms: number): string {
  if (ms < 10) return ms.toFixed(1);
  return Math.round(ms).toLocaleString('en-US');
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}
